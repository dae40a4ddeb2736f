package entraemu

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"

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
	raw, exp, err := s.mint(p, resource)
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
