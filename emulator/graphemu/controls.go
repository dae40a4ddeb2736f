package graphemu

import (
	"errors"
	"maps"
	"net/http"
	"slices"
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

// SetReplication changes how replicas lag behind writes made from now on (see Replication); the
// zero value switches lag off. Writes already made keep their lag: Replicate ends it.
func (s *Server) SetReplication(r Replication) error {
	r, err := r.normalized()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repl.cfg = r
	return nil
}

// Replication is the lag writes get now.
func (s *Server) Replication() Replication {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repl.cfg
}

// Replicate completes every pending replication at once: every replica has every write.
func (s *Server) Replicate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replicate()
}

func (s *Server) replicate() {
	settle := func(o *object) {
		o.born, o.changed, o.prev, o.flipped = nil, nil, nil, nil
	}
	for _, a := range s.apps.order {
		s.apps.update(a, func() { settle(&a.object) })
		for _, p := range a.passwords {
			p.born, p.unborn = nil, nil
		}
		a.compact()
	}
	for _, sp := range s.sps.order {
		s.sps.update(sp, func() { settle(&sp.object) })
	}
}

// SetObjectQuota changes how many directory objects one principal may create (soft-deleted ones
// included); 0 or less removes the limit.
func (s *Server) SetObjectQuota(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quota = max(n, 0)
}

// SetWriteQuota changes the write limit per calling app and tenant and refills every bucket.
func (s *Server) SetWriteQuota(q WriteQuota) error { return s.writes.set(q) }

// resetData deletes every application and service principal that was not seeded (soft-deleted
// ones too), restores the default app management policy, the quotas and the replication the
// server was created with, and completes pending replication: what Reset does besides clearing
// the shared controls.
func (s *Server) resetData() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replicate()
	for _, a := range slices.Clone(s.apps.order) {
		if !a.seeded {
			s.apps.remove(a)
		}
	}
	for _, sp := range slices.Clone(s.sps.order) {
		if !sp.seeded {
			s.sps.remove(sp)
		}
	}
	for _, o := range s.deleted {
		o.deleted, o.deletedAt = false, time.Time{}
	}
	s.deleted, s.created, s.policy = map[string]*object{}, map[string]int{}, defaultPolicy()
	s.repl.cfg, s.quota = s.initial.repl, s.initial.quota
	_ = s.writes.set(s.initial.writes)
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

// State is the directory's contents as the writable replica has them, for inspection; it never
// contains secret values. Soft-deleted objects are in DeletedItems only.
type State struct {
	Applications      []AppState `json:"applications"`
	ServicePrincipals []SPState  `json:"servicePrincipals"`
	DeletedItems      []Deleted  `json:"deletedItems"`
	// Created counts the objects each principal created that still count against its quota.
	Created map[string]int `json:"objectsCreated"`
}

// Deleted is one soft-deleted object.
type Deleted struct {
	ID          string    `json:"id"`
	Type        string    `json:"type"` // application or servicePrincipal
	AppID       string    `json:"appId"`
	UniqueName  string    `json:"uniqueName,omitempty"`
	DisplayName string    `json:"displayName"`
	DeletedAt   time.Time `json:"deletedDateTime"`
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
	snap := State{Applications: []AppState{}, ServicePrincipals: []SPState{}, DeletedItems: []Deleted{}, Created: maps.Clone(s.created)}
	for _, a := range s.apps.order {
		if a.deleted {
			snap.DeletedItems = append(snap.DeletedItems, Deleted{ID: a.id, Type: "application", AppID: str(a.props, "appId"),
				UniqueName: str(a.props, "uniqueName"), DisplayName: str(a.props, "displayName"), DeletedAt: a.deletedAt})
			continue
		}
		st := AppState{
			ID: a.id, AppID: str(a.props, "appId"), DisplayName: str(a.props, "displayName"),
			UniqueName: str(a.props, "uniqueName"), SignInAudience: str(a.props, "signInAudience"),
			Tags: strs(a.props, "tags"), Owners: slices.Clone(a.owners), Passwords: []PasswordState{}, Seeded: a.seeded,
		}
		if st.Owners == nil {
			st.Owners = []string{}
		}
		for _, p := range a.passwords {
			if p.removed {
				continue
			}
			ps := PasswordState{KeyID: p.keyID, Hint: p.hint, StartDateTime: p.start, EndDateTime: p.end, Added: p.added}
			if p.displayName != nil {
				ps.DisplayName = *p.displayName
			}
			st.Passwords = append(st.Passwords, ps)
		}
		snap.Applications = append(snap.Applications, st)
	}
	for _, sp := range s.sps.order {
		if sp.deleted {
			snap.DeletedItems = append(snap.DeletedItems, Deleted{ID: sp.id, Type: "servicePrincipal", AppID: str(sp.props, "appId"),
				DisplayName: str(sp.props, "displayName"), DeletedAt: sp.deletedAt})
			continue
		}
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
		{Pattern: "GET replication", Handle: func(*http.Request) (any, error) {
			return replicationJSON(s.Replication()), nil
		}},
		{Pattern: "PUT replication", Handle: func(r *http.Request) (any, error) {
			var j replicationWire
			if err := emu.Decode(r, &j); err != nil {
				return nil, err
			}
			return nil, s.SetReplication(Replication{Replicas: j.Replicas, MinLag: time.Duration(j.MinLagMS) * time.Millisecond, MaxLag: time.Duration(j.MaxLagMS) * time.Millisecond})
		}},
		{Pattern: "POST replicate", Handle: func(*http.Request) (any, error) {
			s.Replicate()
			return nil, nil
		}},
		{Pattern: "GET policy", Handle: func(*http.Request) (any, error) { return s.AppManagementPolicy(), nil }},
		{Pattern: "PUT policy", Handle: func(r *http.Request) (any, error) {
			var p AppPolicy
			if err := emu.Decode(r, &p); err != nil {
				return nil, err
			}
			return nil, s.SetAppManagementPolicy(p)
		}},
		{Pattern: "GET quota", Handle: func(*http.Request) (any, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			return quotaJSON{ObjectQuota: s.quota, Created: maps.Clone(s.created)}, nil
		}},
		{Pattern: "PUT quota", Handle: func(r *http.Request) (any, error) {
			var q quotaJSON
			if err := emu.Decode(r, &q); err != nil {
				return nil, err
			}
			if q.Created != nil {
				return nil, errors.New("objectsCreated is read-only")
			}
			s.SetObjectQuota(q.ObjectQuota)
			return nil, nil
		}},
		{Pattern: "GET writequota", Handle: func(*http.Request) (any, error) {
			q := s.writes.get()
			return writeQuotaJSON{Writes: q.Writes, WindowMS: q.Window.Milliseconds()}, nil
		}},
		{Pattern: "PUT writequota", Handle: func(r *http.Request) (any, error) {
			var q writeQuotaJSON
			if err := emu.Decode(r, &q); err != nil {
				return nil, err
			}
			return nil, s.SetWriteQuota(WriteQuota{Writes: q.Writes, Window: time.Duration(q.WindowMS) * time.Millisecond})
		}},
	}
}

// replicationWire is Replication on the wire, with the seed for reproducing a run.
type replicationWire struct {
	Replicas int    `json:"replicas"`
	MinLagMS int64  `json:"minLagMs"`
	MaxLagMS int64  `json:"maxLagMs"`
	Seed     uint64 `json:"seed,omitempty"` // read-only
}

func replicationJSON(r Replication) replicationWire {
	return replicationWire{Replicas: r.Replicas, MinLagMS: r.MinLag.Milliseconds(), MaxLagMS: r.MaxLag.Milliseconds()}
}

type quotaJSON struct {
	ObjectQuota int            `json:"objectQuota"` // 0: none
	Created     map[string]int `json:"objectsCreated,omitempty"`
}

type writeQuotaJSON struct {
	Writes   int   `json:"writes"` // negative: none
	WindowMS int64 `json:"windowMs"`
}
