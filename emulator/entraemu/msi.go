package entraemu

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// managedIdentityToken is App Service's identity endpoint (api-version 2019-08-01): the platform
// authenticates the caller by the X-IDENTITY-HEADER secret it put in the process environment.
func (s *Server) managedIdentityToken(w http.ResponseWriter, r *http.Request) {
	f, ok := s.take(r, OpMSI)
	switch {
	case !ok:
		return
	case f != nil:
		s.writeMSIFault(w, f)
		return
	}
	if h := r.Header.Get("X-IDENTITY-HEADER"); subtle.ConstantTimeCompare([]byte(h), []byte(s.msiHeader)) != 1 {
		writeMSIError(w, http.StatusUnauthorized, "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER.")
		return
	}
	q := r.URL.Query()
	if v := q.Get("api-version"); v != "2019-08-01" {
		writeMSIError(w, http.StatusBadRequest, "Unsupported or missing api-version '"+v+"'; the emulator serves 2019-08-01.")
		return
	}
	resource := q.Get("resource")
	if resource == "" {
		writeMSIError(w, http.StatusBadRequest, "The resource parameter is required.")
		return
	}
	if q.Get("object_id") != "" || q.Get("principal_id") != "" || q.Get("mi_res_id") != "" {
		writeMSIError(w, http.StatusBadRequest, "The emulator selects user-assigned identities by client_id only.")
		return
	}
	clientID := q.Get("client_id")
	p, err := s.clients.ManagedIdentity(r.Context(), clientID)
	if err != nil {
		if errors.Is(err, ErrUnknownClient) {
			writeMSIError(w, http.StatusBadRequest, "Unable to load the proper Managed Identity.")
			return
		}
		s.log.Error("managed identity lookup failed", "client_id", clientID, "error", err)
		writeMSIError(w, http.StatusInternalServerError, "An unexpected error occurred while fetching the token.")
		return
	}
	if !s.knownResource(r.Context(), resource) {
		// The platform passes Entra's refusal on in its message.
		writeMSIError(w, http.StatusBadRequest, "AADSTS500011: "+s.aadUnknownResource(resource).Description)
		return
	}
	raw, exp, err := s.managedIdentityMint(p, clientID, resource)
	if err != nil {
		writeMSIError(w, http.StatusInternalServerError, "An unexpected error occurred while fetching the token.")
		return
	}
	s.issuedTo(p.AppID)
	s.log.Info("managed identity token issued", "client_id", p.AppID, "resource", resource)
	// expires_on is a string of Unix seconds in this API version, unlike the v2 endpoint.
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": raw,
		"expires_on":   strconv.FormatInt(exp.Unix(), 10),
		"resource":     resource,
		"token_type":   "Bearer",
		"client_id":    p.AppID,
	})
}

func writeMSIError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"statusCode": status, "message": msg, "correlationId": uuid.NewString()})
}

// managedIdentityMint issues a managed-identity token, or, with the platform's cache on, hands
// out the one issued before until five minutes before it expires: its roles are those the
// identity had then.
func (s *Server) managedIdentityMint(p Principal, clientID, resource string) (string, time.Time, error) {
	key := miKey{clientID, normalResource(resource)}
	s.mu.Lock()
	cached, ok := s.miTokens[key]
	s.mu.Unlock()
	if s.cacheMI && ok && s.now().Before(cached.exp.Add(-5*time.Minute)) {
		return cached.raw, cached.exp, nil
	}
	raw, exp, err := s.mint(p, resource, s.miLife)
	if err == nil && s.cacheMI {
		s.mu.Lock()
		s.miTokens[key] = miToken{raw, exp}
		s.mu.Unlock()
	}
	return raw, exp, err
}
