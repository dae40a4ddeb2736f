package graphemu

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
)

// perms is what a caller's app roles allow, modelled on Graph's application permissions.
type perms struct {
	read     bool // any of the read or write roles
	writeAll bool // Application.ReadWrite.All
	ownedBy  bool // Application.ReadWrite.OwnedBy: create, and write what it owns
	caller   string
}

func (c *call) perms() perms {
	p := perms{caller: c.claims.ObjectID}
	for _, role := range c.claims.Roles {
		switch role {
		case "Application.ReadWrite.All":
			p.read, p.writeAll = true, true
		case "Application.ReadWrite.OwnedBy":
			// OwnedBy reads every app in the tenant; only its writes are limited to owned apps.
			p.read, p.ownedBy = true, true
		case "Application.Read.All", "Directory.Read.All", "Directory.ReadWrite.All":
			p.read = true
		}
	}
	return p
}

func (p perms) canCreate() bool { return p.writeAll || p.ownedBy }

func (p perms) canWrite(o *object) bool {
	return p.writeAll || (p.ownedBy && slices.Contains(o.owners, p.caller))
}

// ownersForNew is who owns an object the caller creates: an OwnedBy caller becomes its owner,
// or it could never touch the object again.
func (p perms) ownersForNew() []string {
	if !p.writeAll && p.caller != "" {
		return []string{p.caller}
	}
	return nil
}

// lagging reports whether something replicating until lagUntil is still invisible to replicas.
// Lag runs on the wall clock, not the injected one, so a frozen test clock cannot freeze it.
func lagging(lagUntil time.Time) bool {
	return !lagUntil.IsZero() && time.Now().Before(lagUntil)
}

// lagUntil is when an object or password created now will have replicated.
func (s *Server) lagUntil() time.Time {
	if s.lag <= 0 {
		return time.Time{}
	}
	return time.Now().Add(s.lag)
}

// findApp resolves an application key segment under s.mu. Replication lag hides a new app from
// every keyed access except the uniqueName upsert, which Graph serves from the writable replica.
func (s *Server) findApp(key string, upsert bool) (*application, *reply) {
	prop, val, ok := parseKey(key)
	if !ok {
		rep := errBadRequest("Invalid object identifier '%s'.", key)
		return nil, &rep
	}
	var found *application
	switch strings.ToLower(prop) {
	case "":
		if _, err := uuid.Parse(val); err != nil {
			rep := errBadRequest("Invalid object identifier '%s'.", val)
			return nil, &rep
		}
		found = s.apps[strings.ToLower(val)]
	case "appid":
		found = s.appByAppID(val)
	case "uniquename":
		for _, a := range s.apps {
			if strings.EqualFold(str(a.props, "uniqueName"), val) {
				found = a
				break
			}
		}
	default:
		rep := errBadRequest("The alternate key '%s' is not defined on type 'microsoft.graph.application'.", prop)
		return nil, &rep
	}
	if found == nil || (!upsert && lagging(found.lagUntil)) {
		rep := errNotFound(val)
		return nil, &rep
	}
	return found, nil
}

func (s *Server) appByAppID(appID string) *application {
	for _, a := range s.apps {
		if strings.EqualFold(str(a.props, "appId"), appID) {
			return a
		}
	}
	return nil
}

// renderApp is an application as Graph returns it; passwords never carry secretText in reads.
func (s *Server) renderApp(a *application, sel []string) ordered {
	creds := make([]ordered, 0, len(a.passwords))
	for _, p := range a.passwords {
		creds = append(creds, p.render(nil))
	}
	return appSchema.render(a.props, sel, map[string]any{"passwordCredentials": creds})
}

func entity(c *call, sch *schema, sel []string, props ordered) ordered {
	ctx := c.base() + "/$metadata#" + sch.set
	if sel != nil {
		ctx += "(" + strings.Join(sel, ",") + ")"
	}
	return append(ordered{{"@odata.context", ctx + "/$entity"}}, props...)
}

func (s *Server) listApplications(c *call) reply {
	if !c.perms().read {
		return errDenied()
	}
	q, rep := parseListQuery(c.r, appSchema)
	if rep != nil {
		return *rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	objs := make([]*object, 0, len(s.apps))
	render := map[*object]*application{}
	for _, a := range s.apps {
		objs = append(objs, &a.object)
		render[&a.object] = a
	}
	return page(c, appSchema, q, objs, func(o *object) ordered { return s.renderApp(render[o], q.sel) })
}

// page applies a list query to objects and renders one page with Graph's envelope.
func page(c *call, sch *schema, q listQuery, objs []*object, render func(*object) ordered) reply {
	sort.Slice(objs, func(i, j int) bool { return objs[i].seq < objs[j].seq })
	var matched []*object
	for _, o := range objs {
		if q.filter == nil || q.filter(o.props) {
			matched = append(matched, o)
		}
	}
	var rest []*object
	for _, o := range matched {
		if o.seq > q.after {
			rest = append(rest, o)
		}
	}
	more := len(rest) > q.top
	if more {
		rest = rest[:q.top]
	}
	ctx := c.base() + "/$metadata#" + sch.set
	if q.sel != nil {
		ctx += "(" + strings.Join(q.sel, ",") + ")"
	}
	out := ordered{{"@odata.context", ctx}}
	if q.count {
		out = append(out, kv{"@odata.count", len(matched)})
	}
	if more {
		out = append(out, kv{"@odata.nextLink", nextLink(c, rest[len(rest)-1].seq)})
	}
	items := make([]ordered, 0, len(rest))
	for _, o := range rest {
		items = append(items, render(o))
	}
	return ok(http.StatusOK, append(out, kv{"value", items}))
}

// nextLink repeats the request's query with a new $skiptoken, absolute, because kiota's
// PageIterator requests it verbatim.
func nextLink(c *call, lastSeq int64) string {
	var keep []string
	for _, part := range strings.Split(c.r.URL.RawQuery, "&") {
		name := strings.ToLower(strings.SplitN(part, "=", 2)[0])
		if part == "" || name == "$skiptoken" || name == "%24skiptoken" {
			continue
		}
		keep = append(keep, part)
	}
	keep = append(keep, "$skiptoken="+encodeSkipToken(lastSeq))
	return c.base() + c.r.URL.EscapedPath()[len("/v1.0"):] + "?" + strings.Join(keep, "&")
}

func (s *Server) getApplication(c *call) reply {
	if !c.perms().read {
		return errDenied()
	}
	sel, rep := selectOnly(c, appSchema)
	if rep != nil {
		return *rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, rep := s.findApp(c.params["app"], false)
	if rep != nil {
		return *rep
	}
	return ok(http.StatusOK, entity(c, appSchema, sel, s.renderApp(a, sel)))
}

func selectOnly(c *call, sch *schema) ([]string, *reply) {
	if v := c.r.URL.Query().Get("$select"); v != "" {
		return parseSelect(v, sch)
	}
	return nil, nil
}

func (s *Server) createApplication(c *call) reply {
	p := c.perms()
	if !p.canCreate() {
		return errDenied()
	}
	body, rep := decodeObject(c.body, false)
	if rep != nil {
		return *rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, rep := s.newApplication(body, "", p.ownersForNew())
	if rep != nil {
		return *rep
	}
	s.log.Info("application created", "id", a.id, "appId", str(a.props, "appId"), "owners", a.owners)
	return ok(http.StatusCreated, entity(c, appSchema, nil, s.renderApp(a, nil)))
}

// newApplication validates a create body and stores the app, under s.mu. uniqueName is the
// upsert key, "" for POST.
func (s *Server) newApplication(body map[string]json.RawMessage, uniqueName string, owners []string) (*application, *reply) {
	props, rep := appSchema.apply(appSchema.defaults(), body, true)
	if rep != nil {
		return nil, rep
	}
	if uniqueName != "" {
		if v, set := body["uniqueName"]; set && !jsonEqual(v, jsonString(uniqueName)) {
			r := errBadRequest("Property 'uniqueName' is read-only and cannot be set.")
			return nil, &r
		}
		props["uniqueName"] = jsonString(uniqueName)
	}
	if str(props, "displayName") == "" {
		r := errInvalidValue("displayName", appSchema.resource)
		return nil, &r
	}
	if u := str(props, "uniqueName"); u != "" {
		for _, other := range s.apps {
			if strings.EqualFold(str(other.props, "uniqueName"), u) {
				r := fail(http.StatusConflict, "Request_MultipleObjectsWithSameKeyValue", "Another object with the same value for property uniqueName already exists.")
				return nil, &r
			}
		}
	}
	// Apps open to personal accounts must take v2 tokens; Graph sets it for a new app.
	if personalAccounts(str(props, "signInAudience")) {
		props["api"], _ = mergeObject(props["api"], json.RawMessage(`{"requestedAccessTokenVersion":2}`), "api")
	}
	a := &application{object: object{id: strings.ToLower(s.ids()), owners: slices.Clone(owners), lagUntil: s.lagUntil()}}
	props["id"] = jsonString(a.id)
	props["appId"] = jsonString(strings.ToLower(s.ids()))
	props["createdDateTime"] = jsonString(fmtCreated(s.now()))
	props["publisherDomain"] = jsonString(s.domain)
	a.props = props
	s.seq++
	a.seq = s.seq
	s.apps[a.id] = a
	return a, nil
}

// updateApplication is PATCH by id or appId, and the uniqueName upsert.
func (s *Server) updateApplication(c *call) reply {
	p := c.perms()
	body, rep := decodeObject(c.body, true)
	if rep != nil {
		return *rep
	}
	key := c.params["app"]
	prop, uniqueName, _ := parseKey(key)
	upsert := strings.EqualFold(prop, "uniqueName")
	s.mu.Lock()
	defer s.mu.Unlock()
	a, rep := s.findApp(key, upsert)
	if rep != nil {
		if rep.status != http.StatusNotFound || !upsert || !preferCreate(c.r) {
			if !p.read {
				return errDenied()
			}
			return *rep
		}
		if !p.canCreate() {
			return errDenied()
		}
		a, rep := s.newApplication(body, uniqueName, p.ownersForNew())
		if rep != nil {
			return *rep
		}
		s.log.Info("application created by upsert", "id", a.id, "appId", str(a.props, "appId"), "uniqueName", uniqueName)
		return ok(http.StatusCreated, entity(c, appSchema, nil, s.renderApp(a, nil)))
	}
	if !p.canWrite(&a.object) {
		return errDenied()
	}
	props, rep := appSchema.apply(a.props, body, false)
	if rep != nil {
		return *rep
	}
	if str(props, "displayName") == "" {
		return errInvalidValue("displayName", appSchema.resource)
	}
	if personalAccounts(str(props, "signInAudience")) && len(a.passwords) > maxPersonalPasswords {
		return errTooManyPasswords()
	}
	a.props = props
	return noContent()
}

// preferCreate reports whether the request asks for upsert semantics.
func preferCreate(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		for _, pref := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(pref), "create-if-missing") {
				return true
			}
		}
	}
	return false
}

// deleteApplication removes the app and its service principal, as deleting an app registration
// does in its home tenant.
func (s *Server) deleteApplication(c *call) reply {
	p := c.perms()
	s.mu.Lock()
	defer s.mu.Unlock()
	a, rep := s.findApp(c.params["app"], false)
	if rep != nil {
		return *rep
	}
	if !p.canWrite(&a.object) {
		return errDenied()
	}
	delete(s.apps, a.id)
	appID := str(a.props, "appId")
	for id, sp := range s.sps {
		if strings.EqualFold(str(sp.props, "appId"), appID) {
			s.removeSP(id)
		}
	}
	s.log.Info("application deleted", "id", a.id, "appId", appID)
	return noContent()
}
