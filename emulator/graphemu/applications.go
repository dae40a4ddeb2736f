package graphemu

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// perms is what a caller's app roles allow, modelled on Graph's application permissions.
type perms struct {
	read        bool // any of the read or write roles
	writeAll    bool // Application.ReadWrite.All
	ownedBy     bool // Application.ReadWrite.OwnedBy: create, and write what it owns
	policyRead  bool // read app management policies
	policyWrite bool // Policy.ReadWrite.ApplicationConfiguration
	caller      string
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
		case rolePolicyRead, "Policy.Read.ApplicationConfiguration":
			p.policyRead = true
		case rolePolicyWrite:
			p.policyRead, p.policyWrite = true, true
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

// findApp resolves an application key segment on the request's replica, under s.mu: a new app is
// not found (404) until that replica has it, and a soft-deleted one is not found at all. An
// upsert is served by the writable replica, which has every app, so a retried upsert converges;
// it also finds a soft-deleted app, whose uniqueName stays taken.
func (s *Server) findApp(c *call, key string, upsert bool) (*application, *reply) {
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
		found, _ = s.apps.get(val)
	case "appid":
		found, _ = s.apps.lookup("appId", val)
	case "uniquename":
		found, _ = s.apps.lookup("uniqueName", val)
	default:
		rep := errBadRequest("The alternate key '%s' is not defined on type 'microsoft.graph.application'.", prop)
		return nil, &rep
	}
	if upsert && found != nil {
		return found, nil
	}
	if found == nil || !found.liveOn(c.replica) {
		rep := errNotFound(val)
		return nil, &rep
	}
	return found, nil
}

func (s *Server) appByAppID(appID string) *application {
	a, _ := s.apps.lookup("appId", appID)
	return a
}

// renderApp is an application as replica r serves it; passwords never carry secretText in reads.
func (s *Server) renderApp(a *application, r int, sel []string) ordered {
	creds := make([]ordered, 0, len(a.passwords))
	for _, p := range a.passwords {
		if p.visibleOn(r) {
			creds = append(creds, p.render(nil))
		}
	}
	return appSchema.render(a.propsOn(r), sel, map[string]any{"passwordCredentials": creds, "deletedDateTime": deletedDateTime(&a.object, r)})
}

// deletedDateTime is when an object was soft-deleted, as replica r knows it; nil for a live one.
func deletedDateTime(o *object, r int) any {
	if !o.deletedOn(r) || o.deletedAt.IsZero() {
		return nil
	}
	return fmtCreated(o.deletedAt)
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
	return page(c, appSchema, q, s.apps, (*application).liveOn, func(a *application) ordered { return s.renderApp(a, c.replica, q.sel) })
}

// page applies a list query to a collection as the request's replica serves it and renders one
// page with Graph's envelope. It walks candidates in creation order from the skip token and stops
// once the page is full, so a page costs what it returns, not what the collection holds.
func page[T member](c *call, sch *schema, q listQuery, coll *collection[T], on func(T, int) bool, render func(T) ordered) reply {
	match := func(t T) bool {
		return on(t, c.replica) && (q.filter == nil || q.filter(t.base().propsOn(c.replica)))
	}
	cands := coll.candidates(q.hint)
	var items []ordered
	var last int64
	more := false
	for _, t := range coll.after(cands, q.after) {
		if !match(t) {
			continue
		}
		if len(items) == q.top {
			more = true
			break
		}
		items = append(items, render(t))
		last = t.base().seq
	}
	ctx := c.base() + "/$metadata#" + sch.set
	if q.sel != nil {
		ctx += "(" + strings.Join(q.sel, ",") + ")"
	}
	out := ordered{{"@odata.context", ctx}}
	if q.count {
		n := 0
		for _, t := range cands {
			if match(t) {
				n++
			}
		}
		out = append(out, kv{"@odata.count", n})
	}
	if more {
		out = append(out, kv{"@odata.nextLink", nextLink(c, last)})
	}
	if items == nil {
		items = []ordered{}
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
	a, rep := s.findApp(c, c.params["app"], false)
	if rep != nil {
		return *rep
	}
	return ok(http.StatusOK, entity(c, appSchema, sel, s.renderApp(a, c.replica, sel)))
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
	a, rep := s.newApplication(p, body, "")
	if rep != nil {
		return *rep
	}
	s.log.Info("application created", "id", a.id, "appId", str(a.props, "appId"), "owners", a.owners)
	return ok(http.StatusCreated, entity(c, appSchema, nil, s.renderApp(a, primary, nil)))
}

// newApplication validates a create body and stores the app, under s.mu. uniqueName is the
// upsert key, "" for POST.
func (s *Server) newApplication(p perms, body map[string]json.RawMessage, uniqueName string) (*application, *reply) {
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
	// A soft-deleted app keeps its uniqueName until it is purged, and Entra reports the
	// collision as a plain 400 whose message alone names it.
	if u := str(props, "uniqueName"); u != "" {
		if _, taken := s.apps.lookup("uniqueName", u); taken {
			r := errBadRequest("Another object with the same value for property uniqueName already exists.")
			return nil, &r
		}
	}
	if rep := s.charge(p); rep != nil {
		return nil, rep
	}
	// Apps open to personal accounts must take v2 tokens; Graph sets it for a new app.
	if personalAccounts(str(props, "signInAudience")) {
		props["api"], _ = mergeObject(props["api"], json.RawMessage(`{"requestedAccessTokenVersion":2}`), "api")
	}
	a := &application{object: object{id: strings.ToLower(s.ids()), owners: p.ownersForNew(), born: s.repl.write(), creator: p.caller}}
	props["id"] = jsonString(a.id)
	props["appId"] = jsonString(strings.ToLower(s.ids()))
	props["createdDateTime"] = jsonString(fmtCreated(s.now()))
	props["publisherDomain"] = jsonString(s.domain)
	a.props = props
	s.seq++
	a.seq = s.seq
	s.apps.add(a)
	return a, nil
}

// charge counts one new object against the creating principal's quota, under s.mu: Entra lets a
// principal without an admin role create 250 directory objects, soft-deleted ones included.
func (s *Server) charge(p perms) *reply {
	if s.quota > 0 && p.caller != "" && s.created[p.caller] >= s.quota {
		r := errQuotaExceeded()
		return &r
	}
	if p.caller != "" {
		s.created[p.caller]++
	}
	return nil
}

// setProps replaces an object's props with a changed version. Replicas learn of it after their
// lag and serve the version before it meanwhile; when a change is still pending, they keep
// serving the oldest version they may have, which is close enough.
func (s *Server) setProps(o *object, next map[string]json.RawMessage) {
	if o.prev == nil || o.changed.settled() {
		o.prev = o.props
	}
	o.props = next
	if o.changed = s.repl.write(); o.changed == nil {
		o.prev = nil
	}
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
	a, rep := s.findApp(c, key, upsert)
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
		a, rep := s.newApplication(p, body, uniqueName)
		if rep != nil {
			return *rep
		}
		s.log.Info("application created by upsert", "id", a.id, "appId", str(a.props, "appId"), "uniqueName", uniqueName)
		return ok(http.StatusCreated, entity(c, appSchema, nil, s.renderApp(a, primary, nil)))
	}
	if a.deleted {
		if !preferCreate(c.r) {
			return errNotFound(uniqueName)
		}
		// The upsert key of a soft-deleted app is still taken: Entra neither creates nor updates.
		return errBadRequest("Another object with the same value for property uniqueName already exists.")
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
	if personalAccounts(str(props, "signInAudience")) && a.livePasswords() > maxPersonalPasswords {
		return errTooManyPasswords()
	}
	s.apps.update(a, func() { s.setProps(&a.object, props) })
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

// deleteApplication soft-deletes the app and its service principal, as deleting an app
// registration does in its home tenant: both move to /directory/deletedItems for 30 days, still
// counting against their creator's quota, and the app keeps its uniqueName.
func (s *Server) deleteApplication(c *call) reply {
	p := c.perms()
	s.mu.Lock()
	defer s.mu.Unlock()
	a, rep := s.findApp(c, c.params["app"], false)
	if rep != nil {
		if !p.read {
			return errDenied()
		}
		return *rep
	}
	if !p.canWrite(&a.object) {
		return errDenied()
	}
	s.softDelete(&a.object)
	appID := str(a.props, "appId")
	if sp, ok := s.sps.lookup("appId", appID); ok && !sp.deleted {
		s.softDelete(&sp.object)
	}
	s.log.Info("application deleted", "id", a.id, "appId", appID)
	return noContent()
}
