package azauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

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

// clientToken signs in as appID with secret (client_credentials), the way the client itself
// will, and translates a refusal: AADSTS500011/70011 (no such resource or scope) and an expired
// secret are CodeInvalid, which no wait fixes; any other 400 or 401 is CodeReplicating, what
// Entra answers until a new password and its app reach every replica. A fresh credential per
// call: MSAL caches tokens per credential, and a cached token would prove nothing.
func clientToken(ctx context.Context, op, tenantID, authorityHost, appID string, secret registrar.SecretValue, scope string, transport policy.Transporter) (string, error) {
	host := authorityHost
	if host == "" {
		host = cloud.AzurePublic.ActiveDirectoryAuthorityHost
	}
	microsoft, err := microsoftAuthority(host)
	if err != nil {
		return "", &registrar.Error{Code: registrar.CodeInternal, Op: op, Message: err.Error()}
	}
	cred, err := azidentity.NewClientSecretCredential(tenantID, appID, secret.Reveal(), &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: host},
			Transport: transport,
			Retry:     policy.RetryOptions{MaxRetries: -1}, // the registrar paces the retries
		},
		DisableInstanceDiscovery: !microsoft,
	})
	if err != nil {
		return "", &registrar.Error{Code: registrar.CodeInternal, Op: op, Message: "building the credential failed"}
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}, TenantID: tenantID})
	if err == nil {
		return tok.Token, nil
	}
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) {
		return "", azerr.Transport(op, err)
	}
	r, ok := azerr.TokenResponse(afe)
	if !ok {
		return "", azerr.Transport(op, err)
	}
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
