package graphemu

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// findSP resolves a service principal key segment on the request's replica, under s.mu; upsert
// looks on the writable replica, as findApp does.
func (s *Server) findSP(c *call, key string, upsert bool) (*servicePrincipal, *reply) {
	prop, val, ok := parseKey(key)
	if !ok {
		rep := errBadRequest("Invalid object identifier '%s'.", key)
		return nil, &rep
	}
	var found *servicePrincipal
	switch strings.ToLower(prop) {
	case "":
		if _, err := uuid.Parse(val); err != nil {
			rep := errBadRequest("Invalid object identifier '%s'.", val)
			return nil, &rep
		}
		found, _ = s.sps.get(val)
	case "appid":
		found, _ = s.sps.lookup("appId", val)
	default:
		rep := errBadRequest("The alternate key '%s' is not defined on type 'microsoft.graph.servicePrincipal'.", prop)
		return nil, &rep
	}
	r := c.replica
	if upsert {
		r = primary
	}
	if found == nil || !found.liveOn(r) {
		rep := errNotFound(val)
		return nil, &rep
	}
	return found, nil
}

func (s *Server) spByAppID(appID string) *servicePrincipal {
	sp, _ := s.sps.lookup("appId", appID)
	return sp
}

func (s *Server) renderSP(sp *servicePrincipal, r int, sel []string) ordered {
	return spSchema.render(sp.propsOn(r), sel, map[string]any{"passwordCredentials": []any{}, "deletedDateTime": deletedDateTime(&sp.object, r)})
}

// spCanWrite: an OwnedBy caller may manage a service principal it owns or whose app it owns.
func (s *Server) spCanWrite(p perms, sp *servicePrincipal) bool {
	if p.canWrite(&sp.object) {
		return true
	}
	if a := s.appByAppID(str(sp.props, "appId")); a != nil {
		return p.canWrite(&a.object)
	}
	return false
}

func (s *Server) listServicePrincipals(c *call) reply {
	if !c.perms().read {
		return errDenied()
	}
	q, rep := parseListQuery(c.r, spSchema)
	if rep != nil {
		return *rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return page(c, spSchema, q, s.sps, (*servicePrincipal).liveOn, func(sp *servicePrincipal) ordered { return s.renderSP(sp, c.replica, q.sel) })
}

func (s *Server) getServicePrincipal(c *call) reply {
	if !c.perms().read {
		return errDenied()
	}
	sel, rep := selectOnly(c, spSchema)
	if rep != nil {
		return *rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sp, rep := s.findSP(c, c.params["sp"], false)
	if rep != nil {
		return *rep
	}
	return ok(http.StatusOK, entity(c, spSchema, sel, s.renderSP(sp, c.replica, sel)))
}

func (s *Server) createServicePrincipal(c *call) reply {
	p := c.perms()
	if !p.canCreate() {
		return errDenied()
	}
	body, rep := decodeObject(c.body, false)
	if rep != nil {
		return *rep
	}
	var appID string
	if json.Unmarshal(body["appId"], &appID) != nil || appID == "" {
		return errInvalidValue("appId", spSchema.resource)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sp, rep := s.newServicePrincipal(c, p, appID, body)
	if rep != nil {
		return *rep
	}
	return ok(http.StatusCreated, entity(c, spSchema, nil, s.renderSP(sp, primary, nil)))
}

// newServicePrincipal creates the SP of an app in this tenant, under s.mu.
func (s *Server) newServicePrincipal(c *call, p perms, appID string, body map[string]json.RawMessage) (*servicePrincipal, *reply) {
	a := s.appByAppID(appID)
	// Until the request's replica has the new app, the SP's backing application cannot be found.
	if a == nil || !a.liveOn(c.replica) {
		r := errNoBackingApp(appID)
		return nil, &r
	}
	if !p.canWrite(&a.object) {
		r := errDenied()
		return nil, &r
	}
	if s.spByAppID(appID) != nil {
		r := fail(http.StatusConflict, "Request_MultipleObjectsWithSameKeyValue",
			"The service principal cannot be created, updated, or restored because the service principal name %s is already in use.", appID)
		return nil, &r
	}
	props, rep := spSchema.apply(spSchema.defaults(), body, true)
	if rep != nil {
		return nil, rep
	}
	if rep := s.charge(p); rep != nil {
		return nil, rep
	}
	appName := str(a.props, "displayName")
	if str(props, "displayName") == "" {
		props["displayName"] = jsonString(appName)
	}
	sp := &servicePrincipal{object: object{id: strings.ToLower(s.ids()), owners: p.ownersForNew(), born: s.repl.write(), creator: p.caller, created: s.now()}}
	props["id"] = jsonString(sp.id)
	props["appId"] = jsonString(str(a.props, "appId"))
	props["appDisplayName"] = jsonString(appName)
	props["appDescription"] = a.props["description"]
	props["appOwnerOrganizationId"] = jsonString(s.tenantID)
	props["signInAudience"] = a.props["signInAudience"]
	props["servicePrincipalNames"] = jsonValue(append([]string{str(a.props, "appId")}, strs(a.props, "identifierUris")...))
	sp.props = props
	s.seq++
	sp.seq = s.seq
	s.sps.add(sp)
	s.log.Info("service principal created", "id", sp.id, "appId", appID)
	return sp, nil
}

// updateServicePrincipal is PATCH by id, and the appId upsert.
func (s *Server) updateServicePrincipal(c *call) reply {
	p := c.perms()
	body, rep := decodeObject(c.body, true)
	if rep != nil {
		return *rep
	}
	key := c.params["sp"]
	prop, appID, _ := parseKey(key)
	upsert := strings.EqualFold(prop, "appId") && preferCreate(c.r)
	s.mu.Lock()
	defer s.mu.Unlock()
	sp, rep := s.findSP(c, key, upsert)
	if rep != nil {
		if rep.status != http.StatusNotFound || !upsert {
			if !p.read {
				return errDenied()
			}
			return *rep
		}
		if !p.canCreate() {
			return errDenied()
		}
		if v, set := body["appId"]; set && !jsonEqual(v, jsonString(appID)) {
			return errBadRequest("Property 'appId' is read-only and cannot be set.")
		}
		if old, ok := s.sps.lookup("appId", appID); ok && old.deleted {
			// A soft-deleted service principal keeps its appId until it is restored or purged.
			return fail(http.StatusConflict, "Request_MultipleObjectsWithSameKeyValue",
				"The service principal cannot be created, updated, or restored because the service principal name %s is already in use.", appID)
		}
		sp, rep := s.newServicePrincipal(c, p, appID, body)
		if rep != nil {
			return *rep
		}
		return ok(http.StatusCreated, entity(c, spSchema, nil, s.renderSP(sp, primary, nil)))
	}
	if !s.spCanWrite(p, sp) {
		return errDenied()
	}
	// An app the request's replica does not have cannot back an update of its SP either.
	if a := s.appByAppID(str(sp.props, "appId")); a != nil && !a.liveOn(c.replica) {
		return errNoBackingApp(str(sp.props, "appId"))
	}
	props, rep := spSchema.apply(sp.props, body, false)
	if rep != nil {
		return *rep
	}
	if str(props, "displayName") == "" {
		return errInvalidValue("displayName", spSchema.resource)
	}
	s.sps.update(sp, func() { s.setProps(&sp.object, props) })
	return noContent()
}

// deleteServicePrincipal soft-deletes a service principal: it moves to /directory/deletedItems.
func (s *Server) deleteServicePrincipal(c *call) reply {
	p := c.perms()
	s.mu.Lock()
	defer s.mu.Unlock()
	sp, rep := s.findSP(c, c.params["sp"], false)
	if rep != nil {
		if !p.read {
			return errDenied()
		}
		return *rep
	}
	if !s.spCanWrite(p, sp) {
		return errDenied()
	}
	s.softDelete(&sp.object)
	return noContent()
}

// Owners and directoryObjects.

// directoryObject renders any object replica r has, live or (binned) soft-deleted, with its
// @odata.type, as collections of directoryObject members do.
func (s *Server) directoryObject(id string, r int, binned bool) (ordered, bool) {
	on := (*object).liveOn
	if binned {
		on = (*object).binnedOn
	}
	if sp, ok := s.sps.get(id); ok && on(&sp.object, r) {
		return append(ordered{{"@odata.type", "#microsoft.graph.servicePrincipal"}}, s.renderSP(sp, r, nil)...), true
	}
	if a, ok := s.apps.get(id); ok && on(&a.object, r) {
		return append(ordered{{"@odata.type", "#microsoft.graph.application"}}, s.renderApp(a, r, nil)...), true
	}
	return nil, false
}

// ownerTarget resolves the object whose owners an owners route addresses.
func (s *Server) ownerTarget(c *call) (*object, *reply) {
	if key, ok := c.params["sp"]; ok {
		sp, rep := s.findSP(c, key, false)
		if rep != nil {
			return nil, rep
		}
		return &sp.object, nil
	}
	a, rep := s.findApp(c, c.params["app"], false)
	if rep != nil {
		return nil, rep
	}
	return &a.object, nil
}

func (s *Server) listOwners(c *call) reply {
	if !c.perms().read {
		return errDenied()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, rep := s.ownerTarget(c)
	if rep != nil {
		return *rep
	}
	items := []ordered{}
	for _, id := range o.owners {
		if d, ok := s.directoryObject(id, c.replica, false); ok {
			items = append(items, d)
		}
	}
	return ok(http.StatusOK, ordered{{"@odata.context", c.base() + "/$metadata#directoryObjects"}, {"value", items}})
}

// addOwner needs Application.ReadWrite.All: Graph documents OwnedBy as not enough to add owners.
func (s *Server) addOwner(c *call) reply {
	p := c.perms()
	body, rep := decodeObject(c.body, false)
	if rep != nil {
		return *rep
	}
	var ref string
	if json.Unmarshal(body["@odata.id"], &ref) != nil || ref == "" {
		return errInvalidValue("@odata.id", "Reference")
	}
	id := strings.ToLower(ref[strings.LastIndexByte(strings.TrimRight(ref, "/"), '/')+1:])
	id = strings.TrimRight(id, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	o, rep := s.ownerTarget(c)
	if rep != nil {
		return *rep
	}
	if !p.writeAll {
		return errDenied()
	}
	if _, exists := s.directoryObject(id, c.replica, false); !exists {
		return errNotFound(id)
	}
	if slices.Contains(o.owners, id) {
		return errBadRequest("One or more added object references already exist for the following modified properties: 'owners'.")
	}
	o.owners = append(o.owners, id)
	return noContent()
}

func (s *Server) removeOwner(c *call) reply {
	p := c.perms()
	s.mu.Lock()
	defer s.mu.Unlock()
	o, rep := s.ownerTarget(c)
	if rep != nil {
		return *rep
	}
	if !p.canWrite(o) {
		return errDenied()
	}
	id := strings.ToLower(c.params["owner"])
	i := slices.Index(o.owners, id)
	if i < 0 {
		return errNotFound(c.params["owner"])
	}
	o.owners = slices.Delete(o.owners, i, i+1)
	return noContent()
}

func (s *Server) getDirectoryObject(c *call) reply {
	if !c.perms().read {
		return errDenied()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := strings.ToLower(c.params["obj"])
	d, found := s.directoryObject(id, c.replica, false)
	if !found {
		return errNotFound(c.params["obj"])
	}
	return ok(http.StatusOK, append(ordered{{"@odata.context", c.base() + "/$metadata#directoryObjects/$entity"}}, d...))
}
