package graphemu

import (
	"context"
	"strings"
	"time"
)

// LookupPrincipal tells Resource Manager (the armemu Directory) about a service principal: its
// principal type and when it was created, on this server's clock. Seeded principals are as old
// as the tenant (zero time). How long Resource Manager takes to see a new one is its own lag.
func (s *Server) LookupPrincipal(_ context.Context, objectID string) (string, time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.sps[strings.ToLower(objectID)]
	if sp == nil {
		return "", time.Time{}, false
	}
	return "ServicePrincipal", sp.created, true
}

// purgeDeletedItem is the permanent delete of a soft-deleted object. Deletes here are permanent
// already, so the deleted items are always empty and every id is 404, as Graph answers for an
// object that is not in them.
func (s *Server) purgeDeletedItem(c *call) reply {
	return errNotFound(c.params["obj"])
}
