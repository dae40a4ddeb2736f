package graphemu

import (
	"context"
	"time"
)

// LookupPrincipal tells Resource Manager (the armemu Directory) about a service principal: its
// principal type and when it was created, on this server's clock. Seeded principals are as old
// as the tenant (zero time). How long Resource Manager takes to see a new one is its own lag.
func (s *Server) LookupPrincipal(_ context.Context, objectID string) (string, time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp, ok := s.sps.get(objectID)
	if !ok || sp.deleted {
		return "", time.Time{}, false
	}
	return "ServicePrincipal", sp.created, true
}
