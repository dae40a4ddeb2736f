package keyvaultemu

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"time"
)

// Fault makes matching operations fail or slow down. Operation is a REST operation name as in
// the routes table (setSecret, getSecret, updateSecret, deleteSecret, getSecrets,
// getSecretVersions, getDeletedSecrets, getDeletedSecret, purgeDeletedSecret,
// recoverDeletedSecret, backupSecret, restoreSecret), or "*" / "" for every one. Faults apply
// after authentication, so the challenge round trip never consumes them.
type Fault struct {
	Operation string
	// Status is the HTTP status to answer with; 0 injects only Latency.
	Status int
	// Code and Message fill the error body; empty gives the service's usual code for Status.
	Code    string
	Message string
	// Count is how many matching calls fail; 0 means every call until ClearFaults.
	Count int
	// Latency is waited before answering (or before serving, when Status is 0).
	Latency time.Duration
	// RetryAfter becomes the Retry-After header in whole seconds, rounded up. A 429 always
	// carries the header, "0" when RetryAfter is zero, so tests can let azcore back off briefly.
	RetryAfter time.Duration
}

var operations = []string{
	"setSecret", "getSecret", "updateSecret", "deleteSecret", "getSecrets", "getSecretVersions",
	"getDeletedSecrets", "getDeletedSecret", "purgeDeletedSecret", "recoverDeletedSecret",
	"backupSecret", "restoreSecret",
}

func (f Fault) matches(op string) bool {
	return f.Operation == "" || f.Operation == "*" || f.Operation == op
}

func (f Fault) apiError() *apiError {
	code, msg := f.Code, f.Message
	if code == "" {
		code = defaultCodes[f.Status]
		if code == "" {
			code = http.StatusText(f.Status)
		}
	}
	if msg == "" {
		msg = "Injected by the key vault emulator's /_emu/ controls."
		if f.Status == http.StatusTooManyRequests {
			msg = "Request was not processed because too many requests were received. Retry after the number of seconds in the Retry-After header."
		}
	}
	return &apiError{status: f.Status, code: code, message: msg}
}

var defaultCodes = map[int]string{
	400: "BadParameter", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
	429: "Throttled", 500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable",
	504: "GatewayTimeout",
}

// InjectFault adds a fault after those already set; the first matching one applies to a call.
func (s *Server) InjectFault(f Fault) error {
	if f.Operation != "" && f.Operation != "*" && !slices.Contains(operations, f.Operation) {
		return fmt.Errorf("keyvault: unknown operation %q (want one of %v or *)", f.Operation, operations)
	}
	if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
		return fmt.Errorf("keyvault: fault status %d is not an error status", f.Status)
	}
	if f.Status == 0 && f.Latency <= 0 {
		return fmt.Errorf("keyvault: a fault needs a status or a latency")
	}
	if f.Count < 0 || f.Latency < 0 || f.RetryAfter < 0 {
		return fmt.Errorf("keyvault: negative count, latency or retryAfter")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
	return nil
}

// Throttle answers the next count calls of op (0: until cleared) with 429 Throttled and a
// Retry-After of retryAfter, rounded up to seconds.
func (s *Server) Throttle(op string, count int, retryAfter time.Duration) error {
	return s.InjectFault(Fault{Operation: op, Status: http.StatusTooManyRequests, Count: count, RetryAfter: retryAfter})
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Faults lists the faults still armed; Count is what remains of each.
func (s *Server) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Fault, len(s.faults))
	for i, f := range s.faults {
		out[i] = *f
	}
	return out
}

// takeFault consumes one use of the first fault matching op; the zero Fault means none.
// Callers hold s.mu.
func (s *Server) takeFault(op string) Fault {
	for i, f := range s.faults {
		if !f.matches(op) {
			continue
		}
		got := *f
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return got
	}
	return Fault{}
}

// Reset forgets every secret, deleted secret, fault and call count. Tenant, issuer, CA and
// backup key stay, so clients and tokens keep working.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vault.reset()
	s.faults = nil
	s.calls = map[string]int{}
}

// State is a read-only view of the vault for tests. It never contains secret values.
type State struct {
	Secrets []SecretState `json:"secrets"`
	// Calls counts authenticated calls per operation, faulted ones included.
	Calls map[string]int `json:"calls"`
}

// SecretState is one name. State is active, recovering, deleting, deleted or purging.
type SecretState struct {
	Name               string         `json:"name"`
	State              string         `json:"state"`
	Latest             string         `json:"latest,omitempty"`
	DeletedDate        *time.Time     `json:"deletedDate,omitempty"`
	ScheduledPurgeDate *time.Time     `json:"scheduledPurgeDate,omitempty"`
	Versions           []VersionState `json:"versions"`
}

// VersionState is one version's metadata, in creation order.
type VersionState struct {
	Version     string            `json:"version"`
	Enabled     bool              `json:"enabled"`
	ContentType string            `json:"contentType,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	NotBefore   *time.Time        `json:"nbf,omitempty"`
	Expires     *time.Time        `json:"exp,omitempty"`
	Created     time.Time         `json:"created"`
	Updated     time.Time         `json:"updated"`
}

var stateNames = map[state]string{
	active: "active", recovering: "recovering", deleting: "deleting", deleted: "deleted", purging: "purging",
}

// Snapshot reads the whole vault's metadata at the server's current time.
func (s *Server) Snapshot() State {
	now := s.begin()
	defer s.mu.Unlock()
	st := State{Secrets: []SecretState{}, Calls: map[string]int{}}
	for op, n := range s.calls {
		st.Calls[op] = n
	}
	for key, sec := range s.vault.secrets {
		_, where := s.vault.lookup(key, now)
		ss := SecretState{Name: sec.name, State: stateNames[where], Latest: sec.latest().id, Versions: []VersionState{}}
		if sec.deleted != nil {
			d, p := sec.deleted.date.UTC(), sec.deleted.purgeAt.UTC()
			ss.DeletedDate, ss.ScheduledPurgeDate = &d, &p
		}
		for _, v := range sec.versions {
			c := v.clone()
			ss.Versions = append(ss.Versions, VersionState{
				Version: c.id, Enabled: c.enabled, ContentType: c.contentType, Tags: c.tags,
				NotBefore: unixPtr(c.nbf), Expires: unixPtr(c.exp),
				Created: time.Unix(c.created, 0).UTC(), Updated: time.Unix(c.updated, 0).UTC(),
			})
		}
		st.Secrets = append(st.Secrets, ss)
	}
	for key := range s.vault.purging {
		st.Secrets = append(st.Secrets, SecretState{Name: key, State: "purging", Versions: []VersionState{}})
	}
	sort.Slice(st.Secrets, func(i, j int) bool { return st.Secrets[i].Name < st.Secrets[j].Name })
	return st
}

func unixPtr(p *int64) *time.Time {
	if p == nil {
		return nil
	}
	t := time.Unix(*p, 0).UTC()
	return &t
}

// faultJSON is a Fault on the /_emu/ wire, with durations in milliseconds and seconds.
type faultJSON struct {
	Operation         string `json:"operation,omitempty"`
	Status            int    `json:"status,omitempty"`
	Code              string `json:"code,omitempty"`
	Message           string `json:"message,omitempty"`
	Count             int    `json:"count,omitempty"`
	LatencyMS         int64  `json:"latencyMs,omitempty"`
	RetryAfterSeconds int64  `json:"retryAfterSeconds,omitempty"`
}

func (j faultJSON) fault() Fault {
	return Fault{Operation: j.Operation, Status: j.Status, Code: j.Code, Message: j.Message, Count: j.Count,
		Latency: time.Duration(j.LatencyMS) * time.Millisecond, RetryAfter: time.Duration(j.RetryAfterSeconds) * time.Second}
}

func toFaultJSON(f Fault) faultJSON {
	return faultJSON{Operation: f.Operation, Status: f.Status, Code: f.Code, Message: f.Message, Count: f.Count,
		LatencyMS: f.Latency.Milliseconds(), RetryAfterSeconds: int64((f.RetryAfter + time.Second - 1) / time.Second)}
}

// serveControls is the JSON face of the Go controls, for tests in other processes:
//
//	GET    /_emu/state     the Snapshot
//	GET    /_emu/faults    armed faults
//	POST   /_emu/faults    {"operation","status","code","message","count","latencyMs","retryAfterSeconds"}
//	DELETE /_emu/faults    clear faults
//	POST   /_emu/throttle  {"operation","count","retryAfterSeconds"}
//	POST   /_emu/reset     forget everything
func (s *Server) serveControls(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) {
		writeJSON(w, status, map[string]map[string]string{"error": {"code": "BadRequest", "message": msg}})
	}
	faults := func() any {
		out := []faultJSON{}
		for _, f := range s.Faults() {
			out = append(out, toFaultJSON(f))
		}
		return map[string]any{"faults": out}
	}
	readFault := func() (faultJSON, bool) {
		var j faultJSON
		b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil || json.Unmarshal(b, &j) != nil {
			fail(http.StatusBadRequest, "the body must be a JSON fault object")
			return j, false
		}
		return j, true
	}
	switch r.Method + " " + r.URL.Path {
	case "GET /_emu/state":
		writeJSON(w, http.StatusOK, s.Snapshot())
	case "GET /_emu/faults":
		writeJSON(w, http.StatusOK, faults())
	case "POST /_emu/faults":
		j, ok := readFault()
		if !ok {
			return
		}
		if err := s.InjectFault(j.fault()); err != nil {
			fail(http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, faults())
	case "DELETE /_emu/faults":
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	case "POST /_emu/throttle":
		j, ok := readFault()
		if !ok {
			return
		}
		if err := s.Throttle(j.Operation, j.Count, time.Duration(j.RetryAfterSeconds)*time.Second); err != nil {
			fail(http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, faults())
	case "POST /_emu/reset":
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	default:
		fail(http.StatusNotFound, "unknown control "+r.Method+" "+r.URL.Path)
	}
}
