package azauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"appreg/internal/azerr"
	"appreg/internal/registrar"
)

// Verifier signs in as a client with its new secret, the way the client itself will
// (client_credentials at the tenant's authority), and implements registrar.Verifier.
type Verifier struct {
	TenantID      string
	AuthorityHost string // "" = https://login.microsoftonline.com
	Scope         string // the token to ask for, e.g. the FHIR service's <url>/.default
	Transport     policy.Transporter
}

var _ registrar.Verifier = (*Verifier)(nil)

// Authenticates asks Entra for a token with the secret. A 400 or 401 from Entra means it does not
// accept the secret yet (a new password replicates within seconds), which is CodeReplicating so
// the registrar waits and asks again — unless Entra names the scope (AADSTS500011, 70011) or an
// expired secret, which no wait will fix and is CodeInvalid. Neither the secret nor Entra's
// response body reaches the error.
func (v *Verifier) Authenticates(ctx context.Context, appID string, secret registrar.SecretValue) error {
	const op = "entra.verify"
	_, err := clientToken(ctx, op, v.TenantID, v.AuthorityHost, appID, secret, v.Scope, v.Transport)
	return err
}

// clientToken signs in as appID with secret (client_credentials), as the client itself will, and
// translates a refusal: AADSTS500011/70011 (no such resource or scope) and an expired secret are
// CodeInvalid, which no wait fixes; any other 400 or 401 is CodeReplicating, what Entra answers
// until a new password and its app reach every replica.
//
// It posts the token request itself rather than through azidentity: a credential caches its
// token, so each sign-in needs a new one, and every new MSAL client first fetches the tenant's
// OpenID metadata, which says nothing about the secret. With SECRET_VERIFY_SUCCESSES=8 that was
// 16 requests and most of the handler's CPU per new secret; this is 8. The request is the one
// MSAL sends for a client secret: form-encoded, to <authority>/<tenant>/oauth2/v2.0/token.
func clientToken(ctx context.Context, op, tenantID, authorityHost, appID string, secret registrar.SecretValue, scope string, transport policy.Transporter) (string, error) {
	host := authorityHost
	if host == "" {
		host = cloud.AzurePublic.ActiveDirectoryAuthorityHost
	}
	if _, err := microsoftAuthority(host); err != nil {
		return "", &registrar.Error{Code: registrar.CodeInternal, Op: op, Message: err.Error()}
	}
	endpoint, err := url.JoinPath(host, url.PathEscape(tenantID), "oauth2/v2.0/token")
	if err != nil {
		return "", &registrar.Error{Code: registrar.CodeInternal, Op: op, Message: "the authority host is not a URL"}
	}
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {appID},
		"client_secret": {secret.Reveal()},
		"scope":         {scope},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", &registrar.Error{Code: registrar.CodeInternal, Op: op, Message: "building the token request failed"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if transport == nil {
		transport = http.DefaultClient
	}
	resp, err := transport.Do(req)
	if err != nil {
		// net/http's errors name the method and URL, never the body that holds the secret.
		return "", azerr.Transport(op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", azerr.Transport(op, err)
	}
	if resp.StatusCode == http.StatusOK {
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
			return "", &registrar.Error{Code: registrar.CodeUnavailable, Op: op, Message: "Entra answered 200 without an access token"}
		}
		return tok.AccessToken, nil
	}
	r := azerr.TokenErrorResponse(resp, body)
	switch {
	case r.Code == aadstsUnknownResource || r.Code == aadstsInvalidScope:
		// Not lag: the scope names nothing Entra will issue tokens for.
		return "", &registrar.Error{Code: registrar.CodeInvalid, Reason: registrar.RejectVerifyScope, Op: op,
			Message: fmt.Sprintf("Entra refuses the scope %q (%s)", scope, r.Describe())}
	case r.Code == aadstsExpiredSecret:
		return "", &registrar.Error{Code: registrar.CodeInvalid, Op: op, Message: "Entra says the secret has expired (" + r.Describe() + ")"}
	case r.Status == http.StatusBadRequest || r.Status == http.StatusUnauthorized:
		// AADSTS7000215 (secret unknown), 700016 (app unknown), 7000229 (no service principal).
		return "", &registrar.Error{Code: registrar.CodeReplicating, Op: op, Message: "Entra does not accept the secret yet (" + r.Describe() + ")"}
	}
	return "", &registrar.Error{Code: registrar.CodeUnavailable, Op: op, Message: "token request failed (" + r.Describe() + ")", RetryAfter: r.RetryAfter}
}

// AADSTS codes the verifier tells apart.
const (
	aadstsUnknownResource = "AADSTS500011" // the resource principal was not found in the tenant
	aadstsInvalidScope    = "AADSTS70011"  // the scope is not valid
	aadstsExpiredSecret   = "AADSTS7000222"
)
