package graphemu

import (
	"encoding/json"
	"slices"
	"strings"
)

// member is what a collection holds: an application or a service principal.
type member interface {
	comparable
	base() *object
}

func (a *application) base() *object       { return &a.object }
func (sp *servicePrincipal) base() *object { return &sp.object }

// collection is one entity set with the indexes Graph's directory keeps, so that a lookup by id
// or alternate key, and a list filtered on an indexed property, cost the same at 10 objects as
// at 10,000: by id, by each alternate key (appId, uniqueName), in creation order (list order
// and skip tokens), and by each element of the string collections filters use (tags). Soft-
// deleted objects stay in every index: their alternate keys remain taken.
type collection[T member] struct {
	byID  map[string]T
	keys  []string                  // alternate key properties, as the schema spells them
	byKey map[string]map[string]T   // property -> lower-cased value -> entity
	elems []string                  // indexed collection properties
	byEl  map[string]map[string][]T // property -> lower-cased element -> entities in creation order
	order []T                       // creation order
}

func newCollection[T member](keys, elems []string) *collection[T] {
	c := &collection[T]{byID: map[string]T{}, keys: keys, elems: elems, byKey: map[string]map[string]T{}, byEl: map[string]map[string][]T{}}
	for _, k := range keys {
		c.byKey[k] = map[string]T{}
	}
	for _, p := range elems {
		c.byEl[p] = map[string][]T{}
	}
	return c
}

// get finds an entity by object id.
func (c *collection[T]) get(id string) (T, bool) {
	t, ok := c.byID[strings.ToLower(id)]
	return t, ok
}

// lookup finds an entity by an alternate key.
func (c *collection[T]) lookup(prop, value string) (T, bool) {
	t, ok := c.byKey[prop][strings.ToLower(value)]
	return t, ok
}

// add indexes a new entity, the newest of the collection.
func (c *collection[T]) add(t T) {
	o := t.base()
	c.byID[o.id] = t
	for _, k := range c.keys {
		if v := str(o.props, k); v != "" {
			c.byKey[k][strings.ToLower(v)] = t
		}
	}
	c.order = append(c.order, t)
	for _, p := range c.elems {
		for _, el := range elements(o, p) {
			c.byEl[p][el] = append(c.byEl[p][el], t)
		}
	}
}

// remove drops an entity from every index, when it is purged.
func (c *collection[T]) remove(t T) {
	o := t.base()
	delete(c.byID, o.id)
	for _, k := range c.keys {
		if v := strings.ToLower(str(o.props, k)); v != "" && c.byKey[k][v] == t {
			delete(c.byKey[k], v)
		}
	}
	if i, ok := c.position(c.order, o.seq); ok {
		c.order = slices.Delete(c.order, i, i+1)
	}
	for _, p := range c.elems {
		for _, el := range elements(o, p) {
			c.unlist(p, el, t)
		}
	}
}

// update runs change, which may replace the entity's props or prev, and re-indexes the elements
// of its collection properties.
func (c *collection[T]) update(t T, change func()) {
	o := t.base()
	before := map[string][]string{}
	for _, p := range c.elems {
		before[p] = elements(o, p)
	}
	change()
	for _, p := range c.elems {
		after := elements(o, p)
		for _, el := range before[p] {
			if !slices.Contains(after, el) {
				c.unlist(p, el, t)
			}
		}
		for _, el := range after {
			if !slices.Contains(before[p], el) {
				list := c.byEl[p][el]
				i, _ := c.position(list, o.seq)
				c.byEl[p][el] = slices.Insert(list, i, t)
			}
		}
	}
}

func (c *collection[T]) unlist(prop, el string, t T) {
	list := c.byEl[prop][el]
	if i, ok := c.position(list, t.base().seq); ok {
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(c.byEl[prop], el)
		return
	}
	c.byEl[prop][el] = list
}

// position finds seq in a list in creation order, or where it would go.
func (c *collection[T]) position(list []T, seq int64) (int, bool) {
	return slices.BinarySearchFunc(list, seq, func(t T, seq int64) int {
		switch s := t.base().seq; {
		case s < seq:
			return -1
		case s > seq:
			return 1
		}
		return 0
	})
}

// candidates are the entities a filter can match, in creation order: those the index names for
// the filter's hint, else all of them. The filter still decides.
func (c *collection[T]) candidates(h *indexHint) []T {
	if h == nil {
		return c.order
	}
	v := strings.ToLower(h.value)
	if h.prop == "id" {
		if t, ok := c.byID[v]; ok {
			return []T{t}
		}
		return nil
	}
	if m, ok := c.byKey[h.prop]; ok {
		if t, ok := m[v]; ok {
			return []T{t}
		}
		return nil
	}
	if m, ok := c.byEl[h.prop]; ok {
		return m[v]
	}
	return c.order
}

// after is the part of a creation-ordered list past a skip token's sequence number.
func (c *collection[T]) after(list []T, seq int64) []T {
	i, found := c.position(list, seq)
	if found {
		i++
	}
	return list[i:]
}

// elements are the lower-cased strings of a collection property in the object's current props and
// in the version lagging replicas still show, since a list served by either may match on them.
func elements(o *object, prop string) []string {
	var out []string
	for _, props := range []map[string]json.RawMessage{o.props, o.prev} {
		for _, s := range strs(props, prop) {
			if s = strings.ToLower(s); !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}
