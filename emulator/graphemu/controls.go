package graphemu

import (
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"appreg/emulator/emu"
)

// Fault is the shared emu.Fault; Operation is one of the Op constants, "" or "*". A 429 always
// carries Retry-After, at least one second, as Graph's throttling does.
type Fault = emu.Fault

// Stats is the shared emu.Stats: calls per operation (the Op constants), after authentication.
type Stats = emu.Stats

// operations lists what faults and latency can target: every operation in the route table and
// the two upserts, which refineOp tells apart from plain updates.
func (s *Server) operations() []string {
	ops := []string{OpUpsertApplication, OpUpsertServicePrincipal}
	for _, rt := range s.routes {
		if !slices.Contains(ops, rt.op) {
			ops = append(ops, rt.op)
		}
	}
	return ops
}

// SetReplicationLag makes applications and passwords created from now on behave as Graph's
// replicas do for d after their creation: by-key reads and writes of a new app get 404
// Request_ResourceNotFound (except the uniqueName upsert, served by the writable replica), its
// service principal cannot be created or updated (400 NoBackingApplicationObject), Entra does not
// know the app yet (AADSTS700016), and a new password is neither accepted by AuthenticateClient
// nor found by removePassword. Zero switches lag off for new objects; Replicate ends the lag of
// existing ones. Lag runs on the wall clock.
func (s *Server) SetReplicationLag(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lag = max(d, 0)
}

// Replicate completes every pending replication at once.
func (s *Server) Replicate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replicate()
}

func (s *Server) replicate() {
	for _, a := range s.apps {
		a.lagUntil = time.Time{}
		for _, p := range a.passwords {
			p.lagUntil = time.Time{}
		}
	}
	for _, sp := range s.sps {
		sp.lagUntil = time.Time{}
	}
}

// resetData deletes every application and service principal that was not seeded, switches
// replication lag off and completes pending replication: what Reset does besides clearing the
// shared controls.
func (s *Server) resetData() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lag = 0
	s.replicate()
	maps.DeleteFunc(s.apps, func(_ string, a *application) bool { return !a.seeded })
	maps.DeleteFunc(s.sps, func(_ string, sp *servicePrincipal) bool { return !sp.seeded })
}

func faultReply(f *Fault) reply {
	code, msg := defaultCode(f.Status)
	if f.Code != "" {
		code = f.Code
	}
	if f.Message != "" {
		msg = f.Message
	}
	rep := fail(f.Status, code, "%s", msg)
	secs := f.RetryAfterSeconds()
	if f.Status == http.StatusTooManyRequests {
		secs = max(secs, 1)
	}
	if secs > 0 {
		rep.header = http.Header{"Retry-After": {strconv.FormatInt(secs, 10)}}
	}
	return rep
}

// State is the directory's contents for inspection; it never contains secret values.
type State struct {
	Applications      []AppState `json:"applications"`
	ServicePrincipals []SPState  `json:"servicePrincipals"`
}

// AppState is one application.
type AppState struct {
	ID             string          `json:"id"`
	AppID          string          `json:"appId"`
	DisplayName    string          `json:"displayName"`
	UniqueName     string          `json:"uniqueName,omitempty"`
	SignInAudience string          `json:"signInAudience"`
	Tags           []string        `json:"tags"`
	Owners         []string        `json:"owners"`
	Passwords      []PasswordState `json:"passwordCredentials"`
	Seeded         bool            `json:"seeded,omitempty"`
}

// PasswordState is a password credential without its secret.
type PasswordState struct {
	KeyID         string    `json:"keyId"`
	DisplayName   string    `json:"displayName,omitempty"`
	Hint          string    `json:"hint"`
	StartDateTime time.Time `json:"startDateTime"`
	EndDateTime   time.Time `json:"endDateTime"`
	Added         time.Time `json:"addedDateTime"`
}

// SPState is one service principal.
type SPState struct {
	ID          string   `json:"id"`
	AppID       string   `json:"appId"`
	DisplayName string   `json:"displayName"`
	Type        string   `json:"servicePrincipalType"`
	Roles       []string `json:"appRoles"`
	Owners      []string `json:"owners"`
	Seeded      bool     `json:"seeded,omitempty"`
}

// State returns the directory's contents in creation order.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := State{Applications: []AppState{}, ServicePrincipals: []SPState{}}
	apps := slices.Collect(maps.Values(s.apps))
	sort.Slice(apps, func(i, j int) bool { return apps[i].seq < apps[j].seq })
	for _, a := range apps {
		st := AppState{
			ID: a.id, AppID: str(a.props, "appId"), DisplayName: str(a.props, "displayName"),
			UniqueName: str(a.props, "uniqueName"), SignInAudience: str(a.props, "signInAudience"),
			Tags: strs(a.props, "tags"), Owners: slices.Clone(a.owners), Passwords: []PasswordState{}, Seeded: a.seeded,
		}
		if st.Owners == nil {
			st.Owners = []string{}
		}
		for _, p := range a.passwords {
			ps := PasswordState{KeyID: p.keyID, Hint: p.hint, StartDateTime: p.start, EndDateTime: p.end, Added: p.added}
			if p.displayName != nil {
				ps.DisplayName = *p.displayName
			}
			st.Passwords = append(st.Passwords, ps)
		}
		snap.Applications = append(snap.Applications, st)
	}
	sps := slices.Collect(maps.Values(s.sps))
	sort.Slice(sps, func(i, j int) bool { return sps[i].seq < sps[j].seq })
	for _, sp := range sps {
		st := SPState{
			ID: sp.id, AppID: str(sp.props, "appId"), DisplayName: str(sp.props, "displayName"),
			Type: str(sp.props, "servicePrincipalType"), Roles: slices.Clone(sp.roles), Owners: slices.Clone(sp.owners), Seeded: sp.seeded,
		}
		if st.Roles == nil {
			st.Roles = []string{}
		}
		if st.Owners == nil {
			st.Owners = []string{}
		}
		snap.ServicePrincipals = append(snap.ServicePrincipals, st)
	}
	return snap
}

// controlRoutes are Graph's own controls beside the shared ones, under /_emu/graph/.
func (s *Server) controlRoutes() []emu.Route {
	return []emu.Route{
		{Pattern: "GET lag", Handle: func(*http.Request) (any, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			return lagJSON{LagMS: s.lag.Milliseconds()}, nil
		}},
		{Pattern: "PUT lag", Handle: func(r *http.Request) (any, error) {
			var l lagJSON
			if err := emu.Decode(r, &l); err != nil {
				return nil, err
			}
			s.SetReplicationLag(time.Duration(l.LagMS) * time.Millisecond)
			return nil, nil
		}},
		{Pattern: "POST replicate", Handle: func(*http.Request) (any, error) {
			s.Replicate()
			return nil, nil
		}},
	}
}

type lagJSON struct {
	LagMS int64 `json:"lagMs"`
}
