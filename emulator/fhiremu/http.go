package fhiremu

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"appreg/emulator/emu"
	"appreg/emulator/internal/token"
)

// Operations faults, throttles and latency can target.
const (
	OpMetadata = "metadata" // GET [base]/metadata
	OpSearch   = "search"   // GET [base]/<type>
	OpRead     = "read"     // GET [base]/<type>/<id>
)

var operations = []string{OpMetadata, OpSearch, OpRead}

// Fault is the shared emu.Fault; Message fills the OperationOutcome's diagnostics.
type Fault = emu.Fault

// Stats is the shared emu.Stats.
type Stats = emu.Stats

// routes is every endpoint of every service: one line per interaction.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fhir/{svc}/metadata", s.service(OpMetadata, false, s.metadata))
	mux.HandleFunc("GET /fhir/{svc}/{type}", s.service(OpSearch, true, s.search))
	mux.HandleFunc("GET /fhir/{svc}/{type}/{id}", s.service(OpRead, true, s.read))
	mux.HandleFunc("/fhir/{svc}/", s.service("", true, s.unsupported))
	mux.Handle(emu.Prefix+"fhir/", s.controls)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeOutcome(w, http.StatusNotFound, "not-found", "The requested route was not found.")
	})
	return mux
}

// request is one call to a service.
type request struct {
	r    *http.Request
	svc  Service
	base string // the service's base URL as the client addressed it: also the token audience
}

type interaction func(q request) (int, any)

// service resolves the service, authenticates and authorizes when the interaction needs it, and
// applies the controls. Authentication comes before everything else but /metadata, as in the
// FHIR server: an unauthenticated request learns nothing, not even whether its route exists.
func (s *Server) service(op string, secured bool, h interaction) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", uuid.NewString())
		svc, ok := s.find(r.PathValue("svc"))
		if !ok {
			writeOutcome(w, http.StatusNotFound, "not-found", "The requested route was not found.")
			return
		}
		q := request{r: r, svc: svc, base: "https://" + r.Host + svc.BasePath()}
		if secured {
			claims, err := s.authenticate(r, q.base)
			if err != nil {
				s.log.Info("fhir request refused", "service", svc.Name, "path", r.URL.Path, "status", 401, "reason", err.Error())
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization_uri="%s/%s", resource_id="%s", realm="%s"`, s.authorityURL, s.tenantID, q.base, q.base))
				writeOutcome(w, http.StatusUnauthorized, "login", "Authentication failed.")
				return
			}
			action := actionRead
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				action = actionWrite
			}
			if !s.authorized(claims.ObjectID, svc.ID, action) {
				s.log.Info("fhir request refused", "service", svc.Name, "path", r.URL.Path, "status", 403, "oid", claims.ObjectID)
				writeOutcome(w, http.StatusForbidden, "forbidden", "Authorization failed.")
				return
			}
		}
		if op != "" {
			wait, f := s.Take(op)
			if !emu.Sleep(r.Context(), wait) {
				return
			}
			if f != nil && f.Status != 0 {
				if f.Status == http.StatusTooManyRequests || f.RetryAfter > 0 {
					w.Header().Set("Retry-After", fmt.Sprint(f.RetryAfterSeconds()))
				}
				msg := f.Message
				if msg == "" {
					msg = "Injected by the FHIR emulator's /_emu/ controls."
				}
				code := f.Code
				if code == "" {
					code = "exception"
				}
				writeOutcome(w, f.Status, code, msg)
				return
			}
		}
		status, body := h(q)
		s.log.Info("fhir request", "service", svc.Name, "method", r.Method, "path", r.URL.Path, "status", status)
		writeFHIR(w, status, body)
	}
}

func (s *Server) find(name string) (Service, bool) {
	for _, svc := range s.services {
		if strings.EqualFold(svc.Name, name) {
			return svc, true
		}
	}
	return Service{}, false
}

// authenticate checks what the FHIR service checks: signature, lifetime, tenant (issuer) and
// an audience equal to the service's base URL. Scopes are not checked, as the service does not.
func (s *Server) authenticate(r *http.Request, audience string) (token.Claims, error) {
	raw := token.Bearer(r.Header.Get("Authorization"))
	if raw == "" {
		return token.Claims{}, errors.New("no bearer token")
	}
	c, err := s.issuer.Verify(raw, audience)
	if err != nil {
		return c, err
	}
	v1 := "https://sts.windows.net/" + s.tenantID + "/"
	v2 := s.authorityURL + "/" + s.tenantID + "/v2.0"
	if !strings.EqualFold(c.TenantID, s.tenantID) || (!strings.EqualFold(c.Issuer, v1) && !strings.EqualFold(c.Issuer, v2)) {
		return c, fmt.Errorf("issuer %s is not this service's tenant", c.Issuer)
	}
	return c, nil
}

// authorized asks Azure RBAC as it stood one propagation delay ago.
func (s *Server) authorized(oid, scope, action string) bool {
	if s.authz == nil || oid == "" {
		return false
	}
	return s.authz.Authorized(oid, scope, action, s.now().Add(-s.propagationDelay()))
}

// operationOutcome is a FHIR OperationOutcome with its fields in the order the service writes
// them, so the 401 and 403 bodies are byte for byte the service's (bar the id).
type operationOutcome struct {
	ResourceType string  `json:"resourceType"`
	ID           string  `json:"id"`
	Issue        []issue `json:"issue"`
}

type issue struct {
	Severity    string `json:"severity"`
	Code        string `json:"code"`
	Diagnostics string `json:"diagnostics"`
}

// outcome is an OperationOutcome with one error.
func outcome(code, diagnostics string) operationOutcome {
	return operationOutcome{ResourceType: "OperationOutcome", ID: correlationID(), Issue: []issue{{"error", code, diagnostics}}}
}

// correlationID is the 32-hex id the service gives each OperationOutcome.
func correlationID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeOutcome(w http.ResponseWriter, status int, code, diagnostics string) {
	writeFHIR(w, status, outcome(code, diagnostics))
}

func writeFHIR(w http.ResponseWriter, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// metadata is the CapabilityStatement, served without a token. Its security block says the
// service takes OAuth bearer tokens from the tenant's authority.
func (s *Server) metadata(q request) (int, any) {
	authority := s.authorityURL + "/" + s.tenantID
	return http.StatusOK, map[string]any{
		"resourceType": "CapabilityStatement",
		"url":          q.base + "/metadata",
		"version":      "1.0",
		"name":         "Microsoft FHIR Server for Azure (azemu)",
		"status":       "draft",
		"experimental": true,
		"date":         s.now().UTC().Format(time.RFC3339),
		"publisher":    "Microsoft",
		"kind":         "capability",
		"software":     map[string]string{"name": "Microsoft FHIR Server for Azure", "version": "azemu"},
		"fhirVersion":  "4.0.1",
		"format":       []string{"application/fhir+json"},
		"rest": []any{map[string]any{
			"mode": "server",
			"security": map[string]any{
				"extension": []any{map[string]any{
					"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
					"extension": []any{
						map[string]string{"url": "token", "valueUri": authority + "/oauth2/v2.0/token"},
						map[string]string{"url": "authorize", "valueUri": authority + "/oauth2/v2.0/authorize"},
					},
				}},
				"service": []any{map[string]any{"coding": []any{map[string]string{
					"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "OAuth",
				}}}},
			},
			"resource": []any{map[string]any{
				"type":        "Patient",
				"interaction": []any{map[string]string{"code": "read"}, map[string]string{"code": "search-type"}},
				"searchParam": []any{map[string]string{"name": "_count", "type": "number"}},
			}},
		}},
	}
}

// maxCount is the largest page the service returns, whatever _count asks for.
const maxCount = 1000

// search is GET [base]/<type>?_count=n: a searchset Bundle of the type's resources, n per page
// (default 10), with a next link while more remain.
func (s *Server) search(q request) (int, any) {
	typ := q.r.PathValue("type")
	if !supported(typ) {
		return http.StatusNotFound, outcome("not-supported", fmt.Sprintf("Resource type '%s' is not supported.", typ))
	}
	query := q.r.URL.Query()
	count := 10
	if v := query.Get("_count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return http.StatusBadRequest, outcome("invalid", fmt.Sprintf("The '_count' parameter is invalid: %q.", v))
		}
		count = min(n, maxCount)
	}
	offset, _ := strconv.Atoi(query.Get("ct"))
	all := s.resources(q.svc.Name, typ)
	offset = min(max(offset, 0), len(all))
	end := min(offset+count, len(all))
	self := q.base + "/" + typ + "?_count=" + strconv.Itoa(count)
	links := []any{map[string]string{"relation": "self", "url": self}}
	if end < len(all) {
		links = append(links, map[string]string{"relation": "next", "url": self + "&ct=" + strconv.Itoa(end)})
	}
	entries := []any{}
	for _, res := range all[offset:end] {
		entries = append(entries, map[string]any{
			"fullUrl":  q.base + "/" + typ + "/" + res.id,
			"resource": res.json(),
			"search":   map[string]string{"mode": "match"},
		})
	}
	return http.StatusOK, map[string]any{
		"resourceType": "Bundle",
		"id":           uuid.NewString(),
		"meta":         map[string]string{"lastUpdated": s.now().UTC().Format(time.RFC3339Nano)},
		"type":         "searchset",
		"link":         links,
		"entry":        entries,
	}
}

// read is GET [base]/<type>/<id>.
func (s *Server) read(q request) (int, any) {
	typ, id := q.r.PathValue("type"), q.r.PathValue("id")
	if !supported(typ) {
		return http.StatusNotFound, outcome("not-supported", fmt.Sprintf("Resource type '%s' is not supported.", typ))
	}
	for _, res := range s.resources(q.svc.Name, typ) {
		if res.id == id {
			return http.StatusOK, res.json()
		}
	}
	return http.StatusNotFound, outcome("not-found", fmt.Sprintf("Resource type '%s' with id '%s' couldn't be found.", typ, id))
}

// unsupported answers what the emulator does not serve, once the caller may ask at all.
func (s *Server) unsupported(q request) (int, any) {
	return http.StatusMethodNotAllowed, outcome("not-supported", fmt.Sprintf("The FHIR emulator serves reads and searches only, not %s %s.", q.r.Method, q.r.URL.Path))
}
