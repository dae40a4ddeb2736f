package graphemu

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Fault is an injected failure or delay on an operation (see the Op constants), for the next
// Count calls or, with Count 0, until cleared.
type Fault struct {
	Operation string // "" or "*": every operation
	// Status is the HTTP status to answer with; 0 only delays the real answer by Latency.
	Status     int
	Code       string        // OData error code; "" picks Graph's usual one for Status
	Message    string        // "" picks a generic one
	Latency    time.Duration // delay before answering
	RetryAfter time.Duration // sent as Retry-After in whole seconds when > 0
	Count      int
}

// faultJSON is a Fault on the /_emu/ wire, with durations in milliseconds and seconds.
type faultJSON struct {
	Operation         string `json:"operation,omitempty"`
	Status            int    `json:"status,omitempty"`
	Code              string `json:"code,omitempty"`
	Message           string `json:"message,omitempty"`
	LatencyMS         int64  `json:"latencyMs,omitempty"`
	RetryAfterSeconds int64  `json:"retryAfterSeconds,omitempty"`
	Count             int    `json:"count,omitempty"`
}

func (f Fault) wire() faultJSON {
	return faultJSON{f.Operation, f.Status, f.Code, f.Message, f.Latency.Milliseconds(), int64(math.Ceil(f.RetryAfter.Seconds())), f.Count}
}

func (f faultJSON) fault() Fault {
	return Fault{f.Operation, f.Status, f.Code, f.Message, time.Duration(f.LatencyMS) * time.Millisecond, time.Duration(f.RetryAfterSeconds) * time.Second, f.Count}
}

// Stats counts calls per operation and injected faults.
type Stats struct {
	Operations map[string]int `json:"operations"`
	Faults     int            `json:"faultsInjected"`
}

func newStats() Stats { return Stats{Operations: map[string]int{}} }

// InjectFault queues a fault; faults are matched in the order they were added.
func (s *Server) InjectFault(f Fault) error {
	if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
		return fmt.Errorf("graph: fault status %d is not an HTTP error", f.Status)
	}
	if f.Status == 0 && f.Latency <= 0 {
		return fmt.Errorf("graph: a fault needs a status or a latency")
	}
	if f.Count < 0 || f.Latency < 0 || f.RetryAfter < 0 {
		return fmt.Errorf("graph: negative count or duration in fault")
	}
	if f.Operation == "*" {
		f.Operation = ""
	}
	if f.Operation != "" && !s.knownOp(f.Operation) {
		return fmt.Errorf("graph: unknown operation %q", f.Operation)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
	return nil
}

func (s *Server) knownOp(op string) bool {
	if op == OpUpsertApplication || op == OpUpsertServicePrincipal {
		return true
	}
	for _, rt := range s.routes {
		if rt.op == op {
			return true
		}
	}
	return false
}

// Throttle answers the next n calls of op ("" for all) with 429 TooManyRequests and a
// Retry-After of retryAfter, rounded up to whole seconds and at least one.
func (s *Server) Throttle(op string, retryAfter time.Duration, n int) error {
	if retryAfter < time.Second {
		retryAfter = time.Second
	}
	return s.InjectFault(Fault{Operation: op, Status: http.StatusTooManyRequests, RetryAfter: retryAfter, Count: n})
}

// ClearFaults drops every queued fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
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

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Operations: maps.Clone(s.stats.Operations), Faults: s.stats.Faults}
}

// Reset clears faults, replication lag (pending replication completes) and counters; the
// directory's contents stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults, s.lag, s.stats = nil, 0, newStats()
	s.replicate()
}

// ResetData deletes every application and service principal that was not seeded.
func (s *Server) ResetData() {
	s.mu.Lock()
	defer s.mu.Unlock()
	maps.DeleteFunc(s.apps, func(_ string, a *application) bool { return !a.seeded })
	maps.DeleteFunc(s.sps, func(_ string, sp *servicePrincipal) bool { return !sp.seeded })
}

func (s *Server) countOp(op string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Operations[op]++
}

func (s *Server) takeFault(op string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.Operation != "" && f.Operation != op {
			continue
		}
		hit := *f
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		s.stats.Faults++
		return &hit
	}
	return nil
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
	if f.RetryAfter > 0 {
		rep.header = http.Header{"Retry-After": {strconv.FormatInt(int64(math.Ceil(f.RetryAfter.Seconds())), 10)}}
	}
	return rep
}

// Snapshot is the directory's state for inspection; it never contains secret values.
type Snapshot struct {
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
func (s *Server) State() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := Snapshot{Applications: []AppState{}, ServicePrincipals: []SPState{}}
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

// serveControls is the /_emu/ test API: JSON in, JSON out, no authentication (loopback only).
func (s *Server) serveControls(w http.ResponseWriter, r *http.Request) {
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		if v != nil {
			json.NewEncoder(w).Encode(v)
		}
	}
	bad := func(err error) { reply(http.StatusBadRequest, map[string]string{"error": err.Error()}) }
	decode := func(v any) error {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		return dec.Decode(v)
	}
	switch r.Method + " " + r.URL.Path {
	case "GET /_emu/state":
		reply(http.StatusOK, s.State())
	case "GET /_emu/stats":
		reply(http.StatusOK, s.Stats())
	case "GET /_emu/faults":
		s.mu.Lock()
		list := make([]faultJSON, 0, len(s.faults))
		for _, f := range s.faults {
			list = append(list, f.wire())
		}
		s.mu.Unlock()
		reply(http.StatusOK, map[string]any{"faults": list})
	case "POST /_emu/faults":
		var f faultJSON
		if err := decode(&f); err != nil {
			bad(err)
			return
		}
		if err := s.InjectFault(f.fault()); err != nil {
			bad(err)
			return
		}
		reply(http.StatusNoContent, nil)
	case "DELETE /_emu/faults":
		s.ClearFaults()
		reply(http.StatusNoContent, nil)
	case "POST /_emu/throttle":
		var t struct {
			Operation         string `json:"operation"`
			RetryAfterSeconds int64  `json:"retryAfterSeconds"`
			Count             int    `json:"count"`
		}
		if err := decode(&t); err != nil {
			bad(err)
			return
		}
		if err := s.Throttle(t.Operation, time.Duration(t.RetryAfterSeconds)*time.Second, t.Count); err != nil {
			bad(err)
			return
		}
		reply(http.StatusNoContent, nil)
	case "GET /_emu/lag":
		s.mu.Lock()
		ms := s.lag.Milliseconds()
		s.mu.Unlock()
		reply(http.StatusOK, map[string]int64{"milliseconds": ms})
	case "PUT /_emu/lag":
		var l struct {
			Milliseconds int64 `json:"milliseconds"`
		}
		if err := decode(&l); err != nil {
			bad(err)
			return
		}
		s.SetReplicationLag(time.Duration(l.Milliseconds) * time.Millisecond)
		reply(http.StatusNoContent, nil)
	case "POST /_emu/replicate":
		s.Replicate()
		reply(http.StatusNoContent, nil)
	case "POST /_emu/reset":
		var opt struct {
			Data bool `json:"data"`
		}
		if r.ContentLength != 0 {
			if err := decode(&opt); err != nil {
				bad(err)
				return
			}
		}
		s.Reset()
		if opt.Data {
			s.ResetData()
		}
		reply(http.StatusNoContent, nil)
	default:
		reply(http.StatusNotFound, map[string]string{"error": "no such control: " + r.Method + " " + r.URL.Path})
	}
}
