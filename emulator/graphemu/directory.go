package graphemu

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"appreg/emulator/entraemu"
)

// AuthenticateClient is Entra's client-secret check against this directory, served like a Graph
// read by one replica picked at random: the replica must have the app, the secret must hash to
// one of its passwords that the replica has and that is live (startDateTime <= now <
// endDateTime), and the app needs a service principal the replica has. So a new secret can be
// accepted once and refused again until every replica has it, as Entra's are.
func (s *Server) AuthenticateClient(_ context.Context, clientID, secret string) (entraemu.Principal, error) {
	sum := sha256.Sum256([]byte(secret))
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repl.pick()
	a := s.appByAppID(clientID)
	if a == nil || !a.liveOn(r) {
		return entraemu.Principal{}, fmt.Errorf("client %s: %w", clientID, entraemu.ErrUnknownClient)
	}
	var match *password
	for _, p := range a.passwords {
		if p.visibleOn(r) && subtle.ConstantTimeCompare(p.hash[:], sum[:]) == 1 {
			match = p
		}
	}
	now := s.now()
	switch {
	case match == nil, now.Before(match.start):
		return entraemu.Principal{}, fmt.Errorf("client %s: %w", clientID, entraemu.ErrInvalidSecret)
	case !now.Before(match.end):
		return entraemu.Principal{}, fmt.Errorf("client %s key %s: %w", clientID, match.keyID, entraemu.ErrExpiredSecret)
	}
	sp := s.spByAppID(clientID)
	if sp == nil || !sp.liveOn(r) {
		return entraemu.Principal{}, fmt.Errorf("client %s: %w", clientID, entraemu.ErrNoServicePrincipal)
	}
	return entraemu.Principal{AppID: str(a.props, "appId"), ObjectID: sp.id, Roles: slices.Clone(sp.roles)}, nil
}

// ManagedIdentity finds a managed identity's service principal by client ID; "" is the
// system-assigned identity, the first one seeded.
func (s *Server) ManagedIdentity(_ context.Context, clientID string) (entraemu.Principal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sp *servicePrincipal
	if clientID == "" {
		sp, _ = s.sps.get(s.systemMI)
	} else if cand := s.spByAppID(clientID); cand != nil && str(cand.props, "servicePrincipalType") == "ManagedIdentity" {
		sp = cand
	}
	if sp == nil || sp.deleted {
		return entraemu.Principal{}, fmt.Errorf("managed identity %q: %w", clientID, entraemu.ErrUnknownClient)
	}
	return entraemu.Principal{AppID: str(sp.props, "appId"), ObjectID: sp.id, Roles: slices.Clone(sp.roles)}, nil
}

// SeedClient creates a confidential client as an administrator would before the tests start: an
// application (single tenant, no owners), its service principal holding the given Graph app
// roles, and a password valid for two years. Seeded objects are exempt from replication lag and
// survive Reset.
func (s *Server) SeedClient(displayName string, roles []string) (appID, objectID, spObjectID, secret string, err error) {
	if displayName == "" {
		return "", "", "", "", fmt.Errorf("graph: seed client: empty display name")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	body := map[string]json.RawMessage{
		"displayName":    jsonString(displayName),
		"signInAudience": jsonString("AzureADMyOrg"),
	}
	props, rep := appSchema.apply(appSchema.defaults(), body, true)
	if rep != nil {
		return "", "", "", "", fmt.Errorf("graph: seed client: %s", rep.err.Message)
	}
	now := s.now().UTC().Truncate(100 * time.Nanosecond)
	a := &application{object: object{id: strings.ToLower(s.ids()), seeded: true}}
	appID = strings.ToLower(s.ids())
	props["id"], props["appId"] = jsonString(a.id), jsonString(appID)
	props["createdDateTime"] = jsonString(fmtCreated(now))
	props["publisherDomain"] = jsonString(s.domain)
	a.props = props
	s.seq++
	a.seq = s.seq
	s.apps.add(a)

	secret = newSecret()
	name := "azemu seed"
	a.passwords = []*password{{
		keyID: strings.ToLower(s.ids()), displayName: &name, hint: secret[:3],
		start: now, end: now.AddDate(defaultPasswordLifetime, 0, 0),
		hash: sha256.Sum256([]byte(secret)), added: now,
	}}

	sp := s.seedSP(appID, displayName, "Application", roles)
	sp.props["appDisplayName"] = jsonString(displayName)
	sp.props["signInAudience"] = jsonString("AzureADMyOrg")
	s.log.Info("seeded client", "appId", appID, "roles", roles)
	return appID, a.id, sp.id, secret, nil
}

// SeedManagedIdentity creates a managed identity's service principal holding the given Graph app
// roles. The first one seeded is the system-assigned identity; later ones are user-assigned and
// are asked for by client ID.
func (s *Server) SeedManagedIdentity(roles []string) (clientID, objectID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clientID = strings.ToLower(s.ids())
	name := "azemu-user-assigned-identity"
	if s.systemMI == "" {
		name = "azemu-function-app"
	}
	sp := s.seedSP(clientID, name, "ManagedIdentity", roles)
	s.sps.update(sp, func() {
		sp.props["alternativeNames"] = jsonValue([]string{"isExplicit=" + fmt.Sprint(s.systemMI != ""),
			"/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/azemu/providers/Microsoft.Web/sites/" + name})
		sp.props["servicePrincipalNames"] = jsonValue([]string{clientID, "https://identity.azure.net/" + clientID})
	})
	if s.systemMI == "" {
		s.systemMI = sp.id
	}
	s.log.Info("seeded managed identity", "clientId", clientID, "roles", roles)
	return clientID, sp.id
}

func (s *Server) seedSP(appID, displayName, typ string, roles []string) *servicePrincipal {
	sp := &servicePrincipal{object: object{id: strings.ToLower(s.ids()), seeded: true}, roles: slices.Clone(roles)}
	props := spSchema.defaults()
	props["id"] = jsonString(sp.id)
	props["appId"] = jsonString(appID)
	props["displayName"] = jsonString(displayName)
	props["appOwnerOrganizationId"] = jsonString(s.tenantID)
	props["servicePrincipalType"] = jsonString(typ)
	props["servicePrincipalNames"] = jsonValue([]string{appID})
	sp.props = props
	s.seq++
	sp.seq = s.seq
	s.sps.add(sp)
	return sp
}

// GrantAppRoles adds Graph app roles to a service principal, as an admin consent would.
func (s *Server) GrantAppRoles(spObjectID string, roles ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp, _ := s.sps.get(spObjectID)
	if sp == nil {
		return fmt.Errorf("graph: grant roles: no service principal %s", spObjectID)
	}
	for _, r := range roles {
		if !slices.Contains(sp.roles, r) {
			sp.roles = append(sp.roles, r)
		}
	}
	return nil
}

// KnownResource is Entra's check that a token's resource has a service principal in the tenant,
// for the directory's own apps: an app named by its appId or one of its identifierUris, whose
// service principal exists, as one replica picked at random has them.
func (s *Server) KnownResource(_ context.Context, resource string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repl.pick()
	name := strings.TrimSuffix(resource, "/")
	cands := s.apps.candidates(&indexHint{prop: "identifierUris", value: name})
	cands = append(slices.Clone(cands), s.apps.candidates(&indexHint{prop: "identifierUris", value: name + "/"})...)
	if a, ok := s.apps.lookup("appId", name); ok {
		cands = append(cands, a)
	}
	for _, a := range cands {
		if !a.liveOn(r) {
			continue
		}
		if sp, ok := s.sps.lookup("appId", str(a.props, "appId")); ok && sp.liveOn(r) {
			return true
		}
	}
	return false
}
