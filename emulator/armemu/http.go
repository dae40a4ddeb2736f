package armemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"appreg/emulator/emu"
	"appreg/emulator/internal/token"
)

// Operations faults, throttles and latency can target.
const (
	OpCreateRoleAssignment = "createRoleAssignment"
	OpGetRoleAssignment    = "getRoleAssignment"
	OpDeleteRoleAssignment = "deleteRoleAssignment"
	OpListRoleAssignments  = "listRoleAssignments"
	OpGetRoleDefinition    = "getRoleDefinition"
	OpListRoleDefinitions  = "listRoleDefinitions"
	OpListSubscriptions    = "listSubscriptions"
	OpGetSubscription      = "getSubscription"
	OpListTenants          = "listTenants"
)

var operations = []string{
	OpCreateRoleAssignment, OpGetRoleAssignment, OpDeleteRoleAssignment, OpListRoleAssignments,
	OpGetRoleDefinition, OpListRoleDefinitions, OpListSubscriptions, OpGetSubscription, OpListTenants,
}

// armError is Resource Manager's error body, {"error":{"code","message"}}.
type armError struct {
	status  int
	code    string
	message string
}

func errInvalidRequestContent(msg string) *armError {
	return &armError{http.StatusBadRequest, "InvalidRequestContent", msg}
}

// call is one authenticated request.
type call struct {
	r      *http.Request
	claims token.Claims
	body   []byte
}

type handler func(c *call) (int, any, *armError)

// route is one REST operation; match returns the handler for a path, or nil.
type route struct {
	op    string
	match func(method string, p armPath) handler
}

// armPath is a request path split at its last /providers/Microsoft.Authorization/: the scope
// and what follows (roleAssignments[/name], roleDefinitions[/id]); other paths keep Scope "".
type armPath struct {
	raw        string
	scope      string
	collection string // "roleassignments", "roledefinitions" or ""
	name       string
}

const authProvider = "/providers/microsoft.authorization/"

func splitPath(p string) armPath {
	out := armPath{raw: strings.TrimSuffix(p, "/")}
	l := strings.ToLower(out.raw)
	i := strings.LastIndex(l, authProvider)
	if i < 0 {
		return out
	}
	out.scope = normScope(out.raw[:i])
	rest := strings.Split(out.raw[i+len(authProvider):], "/")
	out.collection = strings.ToLower(rest[0])
	if len(rest) == 2 {
		out.name = rest[1]
	} else if len(rest) > 2 {
		out.collection = ""
	}
	return out
}

// routes is the whole Resource Manager surface: one line per REST operation.
func (s *Server) routes() []route {
	at := func(method, collection string, named bool, h func(c *call, scope, name string) (int, any, *armError)) func(string, armPath) handler {
		return func(m string, p armPath) handler {
			if m != method || p.collection != collection || (p.name != "") != named {
				return nil
			}
			return func(c *call) (int, any, *armError) { return h(c, p.scope, p.name) }
		}
	}
	exact := func(method, path string, h func(c *call) (int, any, *armError)) func(string, armPath) handler {
		return func(m string, p armPath) handler {
			if m != method || !strings.EqualFold(p.raw, path) {
				return nil
			}
			return h
		}
	}
	return []route{
		{OpCreateRoleAssignment, at(http.MethodPut, "roleassignments", true, s.createAssignment)},
		{OpGetRoleAssignment, at(http.MethodGet, "roleassignments", true, s.getAssignment)},
		{OpDeleteRoleAssignment, at(http.MethodDelete, "roleassignments", true, s.deleteAssignment)},
		{OpListRoleAssignments, at(http.MethodGet, "roleassignments", false, func(c *call, scope, _ string) (int, any, *armError) { return s.listAssignments(c, scope) })},
		{OpGetRoleDefinition, at(http.MethodGet, "roledefinitions", true, s.getRoleDefinition)},
		{OpListRoleDefinitions, at(http.MethodGet, "roledefinitions", false, func(c *call, scope, _ string) (int, any, *armError) { return s.listRoleDefinitions(c, scope) })},
		{OpListSubscriptions, exact(http.MethodGet, "/subscriptions", s.listSubscriptions)},
		{OpGetSubscription, exact(http.MethodGet, "/subscriptions/"+s.subscription, s.getSubscription)},
		{OpListTenants, exact(http.MethodGet, "/tenants", s.listTenants)},
	}
}

// serve authenticates, then routes. Authentication comes first, as at Resource Manager's front
// door: an anonymous request gets 401 whatever its path.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, emu.Prefix) {
		s.controls.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	requestID := uuid.NewString()
	corr := r.Header.Get("x-ms-correlation-request-id")
	if corr == "" {
		corr = uuid.NewString()
	}
	w.Header().Set("x-ms-request-id", requestID)
	w.Header().Set("x-ms-correlation-request-id", corr)
	w.Header().Set("Cache-Control", "no-cache")
	if r.Method == http.MethodGet && strings.EqualFold(strings.TrimSuffix(r.URL.Path, "/"), "/metadata/endpoints") {
		// Anonymous, as in Azure: `az cloud register --endpoint-resource-manager` reads the
		// cloud's other endpoints from here before anyone has signed in.
		writeJSON(w, http.StatusOK, s.cloudMetadata(r))
		return
	}
	status, op := 0, ""
	defer func() {
		s.log.Info("arm request", "method", r.Method, "path", r.URL.Path, "op", op, "status", status, "elapsed", time.Since(start))
	}()
	claims, e := s.authenticate(r)
	if e != nil {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization_uri="%s/%s", error="invalid_token", error_description=%q`, s.authorityURL, s.tenantID, e.message))
		status = s.writeError(w, e)
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		status = s.writeError(w, &armError{http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests."})
		return
	}
	p := splitPath(r.URL.Path)
	var h handler
	for _, rt := range s.routes() {
		if h = rt.match(r.Method, p); h != nil {
			op = rt.op
			break
		}
	}
	if h == nil {
		status = s.writeError(w, &armError{http.StatusNotFound, "NotFound", fmt.Sprintf("The local Resource Manager serves role assignments, role definitions, subscriptions and tenants only, not %s %s.", r.Method, r.URL.Path)})
		return
	}
	c := &call{r: r, claims: claims}
	if r.Method == http.MethodPut {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return
		}
		c.body = b
	}
	wait, f := s.Take(op)
	if !emu.Sleep(r.Context(), wait) {
		return
	}
	if f != nil && f.Status != 0 {
		if f.Status == http.StatusTooManyRequests || f.RetryAfter > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(f.RetryAfterSeconds()))
		}
		status = s.writeError(w, s.faultError(f, c))
		return
	}
	st, body, ae := h(c)
	if ae != nil {
		status = s.writeError(w, ae)
		return
	}
	status = st
	writeJSON(w, st, body)
}

// authenticate checks the bearer token as Resource Manager reports it: each failure has its
// own code.
func (s *Server) authenticate(r *http.Request) (token.Claims, *armError) {
	raw := token.Bearer(r.Header.Get("Authorization"))
	if raw == "" {
		return token.Claims{}, &armError{http.StatusUnauthorized, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."}
	}
	var claims token.Claims
	var err error
	for _, aud := range Audiences {
		if claims, err = s.issuer.Verify(raw, aud); !errors.Is(err, token.ErrAudience) {
			break
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, token.ErrAudience):
		return claims, &armError{http.StatusUnauthorized, "InvalidAuthenticationTokenAudience", "The access token has been obtained for wrong audience or resource. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'."}
	case errors.Is(err, token.ErrExpired):
		return claims, &armError{http.StatusUnauthorized, "ExpiredAuthenticationToken", "The access token expiry UTC time is earlier than current UTC time."}
	default:
		return claims, &armError{http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid."}
	}
	if !strings.EqualFold(claims.TenantID, s.tenantID) {
		return claims, &armError{http.StatusUnauthorized, "InvalidAuthenticationTokenTenant", fmt.Sprintf(
			"The access token is from the wrong issuer '%s'. It must match the tenant 'https://sts.windows.net/%s/' associated with this subscription. Please use the authority (URL) '%s/%s' to get the token.",
			claims.Issuer, s.tenantID, s.authorityURL, s.tenantID)}
	}
	return claims, nil
}

var defaultCodes = map[int]string{
	400: "BadRequest", 401: "AuthenticationFailed", 403: "AuthorizationFailed", 404: "NotFound", 409: "Conflict",
	429: "TooManyRequests", 500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout",
}

// faultError renders an injected fault; a PrincipalNotFound fault gets ARM's real message for
// the principal the request names.
func (s *Server) faultError(f *Fault, c *call) *armError {
	code, msg := f.Code, f.Message
	if code == "" {
		code = defaultCodes[f.Status]
		if code == "" {
			code = http.StatusText(f.Status)
		}
	}
	if code == "PrincipalNotFound" && msg == "" {
		var body createBody
		_ = json.Unmarshal(c.body, &body)
		id := ""
		if body.Properties != nil {
			id = body.Properties.PrincipalID
		}
		return &armError{f.Status, code, principalNotFound(id, s.tenantID).message}
	}
	if msg == "" {
		msg = "Injected by the Resource Manager emulator's /_emu/ controls."
	}
	return &armError{f.Status, code, msg}
}

func (s *Server) writeError(w http.ResponseWriter, e *armError) int {
	writeJSON(w, e.status, map[string]any{"error": map[string]string{"code": e.code, "message": e.message}})
	return e.status
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	if body == nil {
		w.WriteHeader(status)
		return
	}
	b, err := json.Marshal(body)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
