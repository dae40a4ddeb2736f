package keyvaultemu

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"appreg/emulator/emu"
	"appreg/emulator/internal/token"
)

// handlerFunc serves one operation. It returns the status and the JSON body (nil for none), or
// the service error to send instead.
type handlerFunc func(r *http.Request) (int, any, *apiError)

// routes is the whole data plane: one line per REST operation, named as in the Key Vault REST
// reference (the names faults are injected by). The catch-all answers like the service does
// for paths it does not know.
func (s *Server) routes() *http.ServeMux {
	table := []struct {
		pattern string
		op      string
		h       handlerFunc
	}{
		{"PUT /secrets/{name}", "setSecret", s.setSecret},
		{"GET /secrets/{name}", "getSecret", s.getSecret},
		{"GET /secrets/{name}/{$}", "getSecret", s.getSecret},
		{"GET /secrets/{name}/{version}", "getSecret", s.getSecret},
		{"PATCH /secrets/{name}", "updateSecret", s.updateSecret},
		{"PATCH /secrets/{name}/{$}", "updateSecret", s.updateSecret},
		{"PATCH /secrets/{name}/{version}", "updateSecret", s.updateSecret},
		{"DELETE /secrets/{name}", "deleteSecret", s.deleteSecret},
		{"GET /secrets", "getSecrets", s.getSecrets},
		{"GET /secrets/{name}/versions", "getSecretVersions", s.getSecretVersions},
		{"POST /secrets/{name}/backup", "backupSecret", s.backupSecret},
		{"POST /secrets/restore", "restoreSecret", s.restoreSecret},
		{"GET /deletedsecrets", "getDeletedSecrets", s.getDeletedSecrets},
		{"GET /deletedsecrets/{name}", "getDeletedSecret", s.getDeletedSecret},
		{"DELETE /deletedsecrets/{name}", "purgeDeletedSecret", s.purgeDeletedSecret},
		{"POST /deletedsecrets/{name}/recover", "recoverDeletedSecret", s.recoverDeletedSecret},
	}
	mux := http.NewServeMux()
	for _, rt := range table {
		mux.Handle(rt.pattern, s.operation(rt.op, rt.h))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{status: http.StatusNotFound, code: "NotFound",
			message: fmt.Sprintf("The requested resource %s %s is not served by this key vault emulator.", r.Method, r.URL.Path)})
	})
	return mux
}

// ServeHTTP authenticates first, exactly as the service does: the challenge goes out before the
// body is read, because azsecrets sends its first request without body or token.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, emu.Prefix) {
		s.controls.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	requestID := uuid.NewString()
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "-1")
	h.Set("Strict-Transport-Security", "max-age=31536000;includeSubDomains")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("x-ms-request-id", requestID)
	h.Set("x-ms-keyvault-service-version", serviceVersion)
	h.Set("x-ms-keyvault-region", region)
	h.Set("x-ms-keyvault-network-info", "conn_type=Ipv4;addr=127.0.0.1;act_addr_fam=InterNetwork;")
	defer func() {
		s.log.Info("keyvault request", "method", r.Method, "path", r.URL.Path, "op", rec.op,
			"status", rec.status, "requestId", requestID, "elapsed", time.Since(start))
	}()

	claims, e := s.authenticate(r)
	if e != nil {
		h.Set("WWW-Authenticate", s.challenge())
		writeError(rec, e)
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		// Unverified text: the service answers 400 BadParameter here, its exact words are not on record.
		writeError(rec, badParameter("The api-version query parameter is missing. Add ?api-version=2026-04-01 (any version is accepted)."))
		return
	}
	rec.claims = claims
	s.mux.ServeHTTP(rec, r)
}

// operation wraps a handler with the shared controls: the call counter, latency and faults.
func (s *Server) operation(op string, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec, ok := w.(*recorder); ok {
			rec.op = op
			if e := s.authorize(r, rec.claims, op); e != nil {
				writeError(w, e)
				return
			}
		}
		wait, f := s.Take(op)
		if !emu.Sleep(r.Context(), wait) {
			return
		}
		if f != nil && f.Status != 0 {
			if f.Status == http.StatusTooManyRequests || f.RetryAfter > 0 {
				w.Header().Set("Retry-After", fmt.Sprint(f.RetryAfterSeconds()))
			}
			writeError(w, faultError(f))
			return
		}
		status, body, e := h(r)
		if e != nil {
			writeError(w, e)
			return
		}
		writeJSON(w, status, body)
	})
}

// challenge is the WWW-Authenticate value azsecrets parses: it splits on spaces and '=', takes
// the tenant from the authorization path and the scope from resource + "/.default".
func (s *Server) challenge() string {
	return fmt.Sprintf(`Bearer authorization="%s/%s", resource="%s"`, s.authorityURL, s.tenant, Audience)
}

// authenticate checks the bearer token the way Key Vault reports it: every failure is a 401 with
// the challenge, so a client that holds a bad token goes back to Entra.
func (s *Server) authenticate(r *http.Request) (token.Claims, *apiError) {
	raw := token.Bearer(r.Header.Get("Authorization"))
	if raw == "" {
		return token.Claims{}, unauthorized("AKV10000: Request is missing a Bearer, PoP, or MTLS_POP token.")
	}
	claims, err := s.issuer.Verify(raw, Audience)
	if errors.Is(err, token.ErrAudience) {
		if c, err2 := s.issuer.Verify(raw, appIDAudience); err2 == nil {
			claims, err = c, nil
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, token.ErrAudience):
		return claims, unauthorized(fmt.Sprintf("AKV10022: Invalid audience. Expected %s, found: %s.", Audience, peekClaim(raw, "aud")))
	case errors.Is(err, token.ErrSignature):
		header, _, _ := strings.Cut(raw, ".")
		return claims, unauthorized(fmt.Sprintf("AKV10046: Unable to resolve the key used for signature validation. EncodedJwtHeader: '%s'.", header))
	case errors.Is(err, token.ErrExpired):
		return claims, unauthorized("Token validation failed: the token is expired.")
	case errors.Is(err, token.ErrNotYetValid):
		return claims, unauthorized("Token not yet valid.")
	default:
		return claims, unauthorized("Token validation failed: the token is malformed.")
	}
	if !strings.EqualFold(claims.TenantID, s.tenant) {
		found := claims.Issuer
		if found == "" {
			found = "https://sts.windows.net/" + claims.TenantID + "/"
		}
		return claims, unauthorized(fmt.Sprintf("AKV10032: Invalid issuer. Expected one of https://sts.windows.net/%s/, found %s.", s.tenant, found))
	}
	return claims, nil
}

// peekClaim reads one string claim of a token whose signature is already known to be good.
func peekClaim(raw, name string) string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var m map[string]any
	if json.Unmarshal(payload, &m) != nil {
		return ""
	}
	v, _ := m[name].(string)
	return v
}

// apiError is Key Vault's error body: {"error":{"code","message","innererror"?{"code"}}}.
type apiError struct {
	status  int
	code    string
	message string
	inner   string
}

func (e *apiError) MarshalJSON() ([]byte, error) {
	type inner struct {
		Code string `json:"code"`
	}
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Inner   *inner `json:"innererror,omitempty"`
	}
	b := body{Code: e.code, Message: e.message}
	if e.inner != "" {
		b.Inner = &inner{Code: e.inner}
	}
	return json.Marshal(map[string]body{"error": b})
}

func unauthorized(msg string) *apiError {
	return &apiError{status: http.StatusUnauthorized, code: "Unauthorized", message: msg}
}

func badParameter(msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "BadParameter", message: msg}
}

func secretNotFound(nameID string) *apiError {
	return &apiError{status: http.StatusNotFound, code: "SecretNotFound", message: fmt.Sprintf(
		"A secret with (name/id) %s was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182", nameID)}
}

func deletedNotFound(name string) *apiError {
	return &apiError{status: http.StatusNotFound, code: "SecretNotFound", message: "Deleted Secret not found: " + name}
}

func deletedButRecoverable(name string) *apiError {
	return &apiError{status: http.StatusConflict, code: "Conflict", inner: "ObjectIsDeletedButRecoverable", message: fmt.Sprintf(
		"Secret %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.", name)}
}

func beingDeleted() *apiError {
	return &apiError{status: http.StatusConflict, code: "Conflict", inner: "ObjectIsBeingDeleted", message: "Secret is currently being deleted."}
}

func secretDisabled() *apiError {
	return &apiError{status: http.StatusForbidden, code: "Forbidden", inner: "SecretDisabled", message: "Operation get is not allowed on a disabled secret."}
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, e)
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
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// recorder remembers what was answered, for the request log line.
type recorder struct {
	http.ResponseWriter
	status int
	op     string
	claims token.Claims // the authenticated caller
}

func (r *recorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}
