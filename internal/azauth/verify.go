package azauth

import (
	"context"
	"errors"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

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
// accept the secret (yet: a new password replicates within seconds), which is CodeReplicating so
// the registrar waits and asks again; anything else is CodeUnavailable. Neither the secret nor
// Entra's response body reaches the error.
func (v *Verifier) Authenticates(ctx context.Context, appID string, secret registrar.SecretValue) error {
	host := v.AuthorityHost
	if host == "" {
		host = cloud.AzurePublic.ActiveDirectoryAuthorityHost
	}
	microsoft, err := microsoftAuthority(host)
	if err != nil {
		return &registrar.Error{Code: registrar.CodeInternal, Op: "entra.verify", Message: err.Error()}
	}
	// A fresh credential per check: MSAL caches tokens per credential, and a cached token would
	// prove nothing about the secret.
	cred, err := azidentity.NewClientSecretCredential(v.TenantID, appID, secret.Reveal(), &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: host},
			Transport: v.Transport,
			Retry:     policy.RetryOptions{MaxRetries: -1}, // the registrar paces the retries
		},
		DisableInstanceDiscovery: !microsoft,
	})
	if err != nil {
		return &registrar.Error{Code: registrar.CodeInternal, Op: "entra.verify", Message: "building the credential failed"}
	}
	_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{v.Scope}, TenantID: v.TenantID})
	if err == nil {
		return nil
	}
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) && afe.RawResponse != nil {
		status := afe.RawResponse.StatusCode
		if status == 400 || status == 401 {
			return &registrar.Error{Code: registrar.CodeReplicating, Op: "entra.verify",
				Message: fmt.Sprintf("Entra does not accept the new secret yet (HTTP %d)", status)}
		}
		return &registrar.Error{Code: registrar.CodeUnavailable, Op: "entra.verify", Message: fmt.Sprintf("token request answered HTTP %d", status)}
	}
	return &registrar.Error{Code: registrar.CodeUnavailable, Op: "entra.verify", Message: "token request failed"}
}
