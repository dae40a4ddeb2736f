package keyvaultemu

import (
	"net/http"
	"sort"
	"time"

	"appreg/emulator/emu"
)

// Fault is the shared emu.Fault. Operation is a REST operation name as in the routes table
// (setSecret, getSecret, updateSecret, deleteSecret, getSecrets, getSecretVersions,
// getDeletedSecrets, getDeletedSecret, purgeDeletedSecret, recoverDeletedSecret, backupSecret,
// restoreSecret), or "*" / "" for every one. Faults apply after authentication, so the
// challenge round trip never consumes them. A 429 always carries Retry-After, "0" when
// RetryAfter is zero, so tests can let azcore back off briefly.
type Fault = emu.Fault

// Stats is the shared emu.Stats: authenticated calls per operation, faulted ones included.
type Stats = emu.Stats

// operations are the names faults, throttles and latency can target.
var operations = []string{
	"setSecret", "getSecret", "updateSecret", "deleteSecret", "getSecrets", "getSecretVersions",
	"getDeletedSecrets", "getDeletedSecret", "purgeDeletedSecret", "recoverDeletedSecret",
	"backupSecret", "restoreSecret",
}

func faultError(f *Fault) *apiError {
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

// resetData forgets every secret and deleted secret. Tenant, issuer, CA and backup key stay, so
// clients and tokens keep working.
func (s *Server) resetData() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vault.reset()
}

// State is a read-only view of the vault for tests. It never contains secret values.
type State struct {
	Secrets []SecretState `json:"secrets"`
}

// SecretState is one name. State is active, recovering, deleting, deleted or purging.
type SecretState struct {
	Name               string         `json:"name"`
	State              string         `json:"state"`
	Latest             string         `json:"latest,omitempty"`
	DeletedDate        *time.Time     `json:"deletedDate,omitempty"`
	ScheduledPurgeDate *time.Time     `json:"scheduledPurgeDate,omitempty"`
	Versions           []VersionState `json:"versions"` // in the order they were written
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

// State reads the whole vault's metadata at the server's current time.
func (s *Server) State() State {
	now := s.begin()
	defer s.mu.Unlock()
	st := State{Secrets: []SecretState{}}
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
