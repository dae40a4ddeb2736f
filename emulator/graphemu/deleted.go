package graphemu

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// retention is how long Entra keeps a deleted application or service principal restorable.
const retention = 30 * 24 * time.Hour

// softDelete moves an object to /directory/deletedItems, under s.mu. It keeps its alternate keys
// and still counts against its creator's quota until it is purged or expires.
func (s *Server) softDelete(o *object) {
	o.deleted, o.deletedAt, o.flipped = true, s.now().UTC(), s.repl.write()
	s.deleted[o.id] = o
}

// expireDeleted purges what has been soft-deleted for longer than the retention, under s.mu.
func (s *Server) expireDeleted() {
	now := s.now()
	for _, o := range s.deleted {
		if now.Sub(o.deletedAt) >= retention {
			s.purge(o.id)
		}
	}
}

// purge removes a soft-deleted object for good, under s.mu: its keys are free again and it no
// longer counts against its creator's quota.
func (s *Server) purge(id string) {
	var o *object
	if a, ok := s.apps.get(id); ok {
		o = &a.object
		s.apps.remove(a)
	} else if sp, ok := s.sps.get(id); ok {
		o = &sp.object
		s.sps.remove(sp)
	} else {
		return
	}
	delete(s.deleted, id)
	if o.creator != "" {
		if s.created[o.creator]--; s.created[o.creator] <= 0 {
			delete(s.created, o.creator)
		}
	}
	if s.systemMI == id {
		s.systemMI = ""
	}
	// Nothing is owned by an object that no longer exists. Purges are rare; a scan will do.
	unlink := func(o *object) { o.owners = slices.DeleteFunc(o.owners, func(x string) bool { return x == id }) }
	for _, a := range s.apps.order {
		unlink(&a.object)
	}
	for _, sp := range s.sps.order {
		unlink(&sp.object)
	}
}

// binned finds a soft-deleted object as the request's replica lists it in deletedItems.
func (s *Server) binned(c *call) (*object, *reply) {
	id := strings.ToLower(c.params["obj"])
	if a, ok := s.apps.get(id); ok && a.binnedOn(c.replica) {
		return &a.object, nil
	}
	if sp, ok := s.sps.get(id); ok && sp.binnedOn(c.replica) {
		return &sp.object, nil
	}
	rep := errNotFound(c.params["obj"])
	return nil, &rep
}

func (s *Server) listDeletedApplications(c *call) reply {
	if !c.perms().read {
		return errDenied()
	}
	q, rep := parseListQuery(c.r, appSchema)
	if rep != nil {
		return *rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return page(c, deletedSchema(appSchema), q, s.apps, (*application).binnedOn, func(a *application) ordered { return s.renderApp(a, c.replica, q.sel) })
}

func (s *Server) listDeletedServicePrincipals(c *call) reply {
	if !c.perms().read {
		return errDenied()
	}
	q, rep := parseListQuery(c.r, spSchema)
	if rep != nil {
		return *rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return page(c, deletedSchema(spSchema), q, s.sps, (*servicePrincipal).binnedOn, func(sp *servicePrincipal) ordered { return s.renderSP(sp, c.replica, q.sel) })
}

// deletedSchema is sch addressed as the deletedItems cast, for @odata.context.
func deletedSchema(sch *schema) *schema {
	d := *sch
	d.set = "directory/deletedItems/microsoft.graph." + sch.typeName
	return &d
}

func (s *Server) getDeletedItem(c *call) reply {
	if !c.perms().read {
		return errDenied()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, rep := s.binned(c)
	if rep != nil {
		return *rep
	}
	d, _ := s.directoryObject(o.id, c.replica, true)
	return ok(http.StatusOK, append(ordered{{"@odata.context", c.base() + "/$metadata#directory/deletedItems/$entity"}}, d...))
}

// restoreDeletedItem brings a soft-deleted object back, with its id, appId and uniqueName.
func (s *Server) restoreDeletedItem(c *call) reply {
	p := c.perms()
	s.mu.Lock()
	defer s.mu.Unlock()
	o, rep := s.binned(c)
	if rep != nil {
		if !p.read {
			return errDenied()
		}
		return *rep
	}
	if !s.mayWriteObject(p, o) {
		return errDenied()
	}
	o.deleted, o.deletedAt, o.flipped = false, time.Time{}, s.repl.write()
	delete(s.deleted, o.id)
	s.log.Info("deleted item restored", "id", o.id)
	d, _ := s.directoryObject(o.id, primary, false)
	return ok(http.StatusOK, append(ordered{{"@odata.context", c.base() + "/$metadata#directoryObjects/$entity"}}, d...))
}

// purgeDeletedItem deletes a soft-deleted object permanently.
func (s *Server) purgeDeletedItem(c *call) reply {
	p := c.perms()
	s.mu.Lock()
	defer s.mu.Unlock()
	o, rep := s.binned(c)
	if rep != nil {
		if !p.read {
			return errDenied()
		}
		return *rep
	}
	if !s.mayWriteObject(p, o) {
		return errDenied()
	}
	s.purge(o.id)
	s.log.Info("deleted item purged", "id", o.id)
	return noContent()
}

// mayWriteObject applies the write rule of the object's type.
func (s *Server) mayWriteObject(p perms, o *object) bool {
	if sp, ok := s.sps.get(o.id); ok {
		return s.spCanWrite(p, sp)
	}
	return p.canWrite(o)
}
