package entraemu

import (
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"strconv"

	"appreg/emulator/emu"
)

// Operations faults, throttles and latency can target.
const (
	OpToken = "token" // the v2 token endpoint
	OpMSI   = "msi"   // the managed-identity endpoint
)

// Fault is the shared emu.Fault. Operation is OpToken, OpMSI, or "" / "*" for both. At the token
// endpoint Code is the OAuth error (default temporarily_unavailable) and Message the description;
// a Message that starts "AADSTS<number>: " sets the number MSAL reads from error_codes (default
// 90033). The managed-identity endpoint answers with Message alone, as App Service does.
type Fault = emu.Fault

// Stats is the shared emu.Stats: requests per endpoint (OpToken, OpMSI), refused ones included.
type Stats = emu.Stats

// State is what this Entra remembers: the tenant and how many tokens it issued to each client
// (application) ID since it started or was last Reset. It never holds a token or a secret.
type State struct {
	TenantID     string         `json:"tenantId"`
	TokensIssued map[string]int `json:"tokensIssued"`
}

// State returns a copy of the state.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return State{TenantID: s.tenantID, TokensIssued: maps.Clone(s.issued)}
}

// resetData forgets the tokens issued; tenant, signing key and CA stay, so tokens already out
// keep working, as they would after a real Entra forgot nothing.
func (s *Server) resetData() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued = map[string]int{}
	s.miTokens = map[miKey]miToken{}
}

// ForgetTokens empties the managed-identity token cache, as its tokens expiring would: the next
// request gets a token with the identity's current roles. Tokens already handed out stay valid.
func (s *Server) ForgetTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.miTokens = map[miKey]miToken{}
}

// controlRoutes are Entra's own controls beside the shared ones, under /_emu/entra/.
func (s *Server) controlRoutes() []emu.Route {
	return []emu.Route{
		{Pattern: "GET resources", Handle: func(*http.Request) (any, error) {
			return resourcesJSON{Resources: s.Resources()}, nil
		}},
		{Pattern: "POST resources", Handle: func(r *http.Request) (any, error) {
			var j struct {
				Resource string `json:"resource"`
			}
			if err := emu.Decode(r, &j); err != nil {
				return nil, err
			}
			return nil, s.AddResource(j.Resource)
		}},
		{Pattern: "DELETE tokens", Handle: func(*http.Request) (any, error) {
			s.ForgetTokens()
			return nil, nil
		}},
	}
}

type resourcesJSON struct {
	Resources []string `json:"resources"`
}

func (s *Server) issuedTo(appID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued[appID]++
}

// take runs the shared controls for one call: it waits the injected latency and returns the
// fault to answer with, or nil. It reports false when the client went away while waiting.
func (s *Server) take(r *http.Request, op string) (*Fault, bool) {
	wait, f := s.Take(op)
	if !emu.Sleep(r.Context(), wait) {
		return nil, false
	}
	if f != nil && f.Status == 0 {
		return nil, true
	}
	return f, true
}

var aadstsPrefix = regexp.MustCompile(`^AADSTS(\d+): `)

func (s *Server) writeFault(w http.ResponseWriter, r *http.Request, f *Fault) {
	e := aadServerError()
	if f.Code != "" {
		e.Error = f.Code
	}
	if f.Message != "" {
		e.Description = f.Message
		if m := aadstsPrefix.FindStringSubmatch(f.Message); m != nil {
			e.Code, _ = strconv.Atoi(m[1])
			e.Description = f.Message[len(m[0]):]
		}
	}
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(f.RetryAfterSeconds()))
	}
	s.writeAADError(w, r, f.Status, e)
}

func (s *Server) writeMSIFault(w http.ResponseWriter, f *Fault) {
	msg := f.Message
	if msg == "" {
		msg = "The managed identity endpoint failed (injected)."
	}
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(f.RetryAfterSeconds()))
	}
	writeMSIError(w, f.Status, msg)
}
