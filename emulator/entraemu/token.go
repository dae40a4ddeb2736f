package entraemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"appreg/emulator/internal/token"
)

// tokenLifetime is what Entra reports for app tokens: 3599 s, an hour less the second it took.
const tokenLifetime = 3599 * time.Second

// oidcScopes are the OpenID scopes MSAL adds to every request; they never name a resource.
var oidcScopes = []string{"openid", "offline_access", "profile", "email"}

// knownTenant accepts the tenant's ID and the multi-tenant aliases MSAL may ask metadata for.
func (s *Server) knownTenant(t string) bool {
	return strings.EqualFold(t, s.tenantID) || t == "common" || t == "organizations"
}

func (s *Server) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if !s.knownTenant(tenant) {
		s.writeAADError(w, r, http.StatusBadRequest, aadTenantNotFound(tenant, "invalid_tenant"))
		return
	}
	// Entra answers the multi-tenant aliases with a {tenantid} placeholder in the issuer, which
	// MSAL substitutes; for a tenant ID it names the tenant.
	issuerTenant := s.tenantID
	if tenant == "common" || tenant == "organizations" {
		issuerTenant = "{tenantid}"
	}
	// URLs name the host the client addressed, so the issuer matches the authority MSAL was
	// given whether it is this listener, a shared azemu port or a remapped real host name.
	origin := "https://" + r.Host
	base := origin + "/" + tenant
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                origin + "/" + issuerTenant + "/v2.0",
		"request_uri_parameter_supported":       false,
		"userinfo_endpoint":                     "https://graph.microsoft.com/oidc/userinfo",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"claims_supported":                      []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"},
		"kerberos_endpoint":                     base + "/kerberos",
		"tenant_region_scope":                   "NA",
		"cloud_instance_name":                   "microsoftonline.com",
		"cloud_graph_host_name":                 "graph.windows.net",
		"msgraph_host":                          "graph.microsoft.com",
		"rbac_url":                              "https://pas.windows.net",
	})
}

func (s *Server) keys(w http.ResponseWriter, r *http.Request) {
	if !s.knownTenant(r.PathValue("tenant")) {
		s.writeAADError(w, r, http.StatusBadRequest, aadTenantNotFound(r.PathValue("tenant"), "invalid_tenant"))
		return
	}
	writeJSON(w, http.StatusOK, s.issuer.JWKS())
}

// instanceDiscovery answers MSAL's alias lookup for this host only, so Option B setups (the real
// login.microsoftonline.com name remapped here) can keep discovery switched on.
func (s *Server) instanceDiscovery(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	tenant := "common"
	if ep, err := url.Parse(r.URL.Query().Get("authorization_endpoint")); err == nil && ep.Host != "" {
		host = ep.Host
		if seg := strings.Split(strings.Trim(ep.Path, "/"), "/"); seg[0] != "" {
			tenant = seg[0]
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": "https://" + host + "/" + tenant + "/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata": []map[string]any{{
			"preferred_network": host,
			"preferred_cache":   host,
			"aliases":           []string{host},
		}},
	})
}

func (s *Server) tokenWrongMethod(w http.ResponseWriter, r *http.Request) {
	s.writeAADError(w, r, http.StatusBadRequest, aadError{
		Error: "invalid_request", Code: 900561,
		Description: fmt.Sprintf("The endpoint only accepts POST, OPTIONS requests. Received a %s request.", r.Method),
	})
}

// token is the v2 token endpoint for the client_credentials grant with a client secret.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	f, ok := s.take(r, OpToken)
	switch {
	case !ok:
		return
	case f != nil:
		s.writeFault(w, r, f)
		return
	}
	tenant := r.PathValue("tenant")
	if !strings.EqualFold(tenant, s.tenantID) {
		s.writeAADError(w, r, http.StatusBadRequest, aadTenantNotFound(tenant, "invalid_request"))
		return
	}
	// Only the body counts: Entra ignores token parameters in the query string.
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		s.writeAADError(w, r, http.StatusBadRequest, aadMissing("grant_type"))
		return
	}
	form := r.PostForm
	grant := form.Get("grant_type")
	if grant == "" {
		s.writeAADError(w, r, http.StatusBadRequest, aadMissing("grant_type"))
		return
	}
	if grant != "client_credentials" {
		s.writeAADError(w, r, http.StatusBadRequest, aadError{
			Error: "unsupported_grant_type", Code: 70003,
			Description: fmt.Sprintf("The app requested an unsupported grant type '%s'.", grant),
		})
		return
	}
	clientID, secret := form.Get("client_id"), form.Get("client_secret")
	// client_secret_basic: the credentials may come in the Authorization header instead.
	if u, p, ok := r.BasicAuth(); ok {
		if clientID == "" {
			clientID, _ = url.QueryUnescape(u)
		}
		if secret == "" {
			secret, _ = url.QueryUnescape(p)
		}
	}
	if clientID == "" {
		s.writeAADError(w, r, http.StatusBadRequest, aadMissing("client_id"))
		return
	}
	scope := form.Get("scope")
	if scope == "" {
		s.writeAADError(w, r, http.StatusBadRequest, aadMissing("scope"))
		return
	}
	resource, aerr := resourceFromScope(scope)
	if aerr != nil {
		s.writeAADError(w, r, http.StatusBadRequest, *aerr)
		return
	}
	if form.Get("client_assertion") != "" && secret == "" {
		s.writeAADError(w, r, http.StatusUnauthorized, aadError{
			Error: "invalid_client", Code: 7000218,
			Description: "The request body must contain the following parameter: 'client_secret'. The emulator does not accept client assertions.",
		})
		return
	}
	if secret == "" {
		s.writeAADError(w, r, http.StatusUnauthorized, aadError{
			Error: "invalid_client", Code: 7000218,
			Description: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
		})
		return
	}
	p, err := s.clients.AuthenticateClient(r.Context(), clientID, secret)
	if err != nil {
		status, ae := s.authError(err, clientID)
		s.log.Info("token refused", "client_id", clientID, "resource", resource, "code", ae.Code)
		s.writeAADError(w, r, status, ae)
		return
	}
	if !s.knownResource(r.Context(), resource) {
		s.log.Info("token refused", "client_id", clientID, "resource", resource, "code", 500011)
		s.writeAADError(w, r, http.StatusBadRequest, s.aadUnknownResource(resource))
		return
	}
	raw, _, err := s.mint(p, resource, tokenLifetime)
	if err != nil {
		s.writeAADError(w, r, http.StatusInternalServerError, aadServerError())
		return
	}
	s.issuedTo(p.AppID)
	s.log.Info("token issued", "client_id", p.AppID, "resource", resource, "grant", grant)
	secs := int64(tokenLifetime / time.Second)
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   raw,
	})
}

// mint signs an app-only access token lasting life; Entra issues v1 tokens to Graph and Key Vault.
func (s *Server) mint(p Principal, resource string, life time.Duration) (string, time.Time, error) {
	now := s.now()
	exp := now.Add(life)
	c := token.Claims{
		Issuer:    "https://sts.windows.net/" + s.tenantID + "/",
		Audience:  resource,
		TenantID:  s.tenantID,
		AppID:     p.AppID,
		ObjectID:  p.ObjectID,
		Subject:   p.ObjectID,
		IDType:    "app",
		IssuedAt:  now.Unix(),
		NotBefore: now.Unix(),
		ExpiresAt: exp.Unix(),
	}
	if IsGraph(resource) {
		c.Roles = slices.Clone(p.Roles)
	}
	raw, err := s.issuer.Sign(c)
	return raw, exp, err
}

// resourceFromScope applies the v2 client-credentials rule: exactly one "<resource>/.default",
// plus any OpenID scopes, which name no resource and are dropped.
func resourceFromScope(scope string) (string, *aadError) {
	var resources []string
	for _, sc := range strings.Fields(scope) {
		if slices.Contains(oidcScopes, strings.ToLower(sc)) {
			continue
		}
		resources = append(resources, sc)
	}
	switch {
	case len(resources) == 0:
		return "", &aadError{Error: "invalid_scope", Code: 70011,
			Description: fmt.Sprintf("The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", scope)}
	case len(resources) > 1:
		return "", &aadError{Error: "invalid_scope", Code: 28000,
			Description: fmt.Sprintf("Provided value for the input parameter scope '%s' is not valid because it contains more than one resource. Scope %s is not valid.", scope, scope)}
	}
	res, ok := strings.CutSuffix(resources[0], "/.default")
	if !ok || res == "" {
		return "", &aadError{Error: "invalid_scope", Code: 1002012,
			Description: fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", resources[0])}
	}
	return res, nil
}

// authError maps an authenticator's answer to Entra's status and body.
func (s *Server) authError(err error, clientID string) (int, aadError) {
	switch {
	case errors.Is(err, ErrUnknownClient):
		return http.StatusBadRequest, aadError{Error: "unauthorized_client", Code: 700016,
			Description: fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, s.tenantID)}
	case errors.Is(err, ErrInvalidSecret):
		return http.StatusUnauthorized, aadError{Error: "invalid_client", Code: 7000215,
			Description: fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", clientID)}
	case errors.Is(err, ErrExpiredSecret):
		return http.StatusUnauthorized, aadError{Error: "invalid_client", Code: 7000222,
			Description: fmt.Sprintf("The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", clientID)}
	case errors.Is(err, ErrNoServicePrincipal):
		return http.StatusBadRequest, aadError{Error: "invalid_client", Code: 7000229,
			Description: fmt.Sprintf("The client application %s is missing service principal in the tenant %s. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119", clientID, s.tenantID)}
	}
	s.log.Error("client authentication failed", "client_id", clientID, "error", err)
	return http.StatusInternalServerError, aadServerError()
}

// aadError is Entra's OAuth error body before the trace fields are added.
type aadError struct {
	Error       string
	Code        int
	Description string
}

func aadMissing(param string) aadError {
	return aadError{Error: "invalid_request", Code: 900144,
		Description: fmt.Sprintf("The request body must contain the following parameter: '%s'.", param)}
}

func aadTenantNotFound(tenant, kind string) aadError {
	return aadError{Error: kind, Code: 90002,
		Description: fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", tenant)}
}

func aadServerError() aadError {
	return aadError{Error: "temporarily_unavailable", Code: 90033, Description: "A transient error has occurred. Please try again."}
}

// writeAADError writes the body MSAL parses: the description carries the AADSTS prefix and the
// trace lines, error_codes repeats the number, correlation_id echoes client-request-id.
func (s *Server) writeAADError(w http.ResponseWriter, r *http.Request, status int, e aadError) {
	now := s.now().UTC()
	traceID := uuid.NewString()
	corr := r.Header.Get("client-request-id")
	if corr == "" {
		corr = uuid.NewString()
	}
	ts := now.Format("2006-01-02 15:04:05Z")
	desc := fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", e.Code, e.Description, traceID, corr, now.Format("2006-01-02 15:04:05.0000000Z"))
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("x-ms-request-id", traceID)
	writeJSON(w, status, map[string]any{
		"error":             e.Error,
		"error_description": desc,
		"error_codes":       []int{e.Code},
		"timestamp":         ts,
		"trace_id":          traceID,
		"correlation_id":    corr,
		"error_uri":         fmt.Sprintf("https://%s/error?code=%d", r.Host, e.Code),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
