package azauth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Options say which identity to act as. Exactly one of ClientSecret and ManagedIdentity must be
// set; NewCredential refuses anything else rather than guess.
type Options struct {
	// TenantID is the directory the client secret belongs to. Required with ClientSecret; a managed
	// identity's tenant is the hosting subscription's, so it is ignored then.
	TenantID string
	// ClientID is the application (client) ID to sign in as with ClientSecret, or, with
	// ManagedIdentity, the client ID of a user-assigned identity ("" = the system-assigned one).
	ClientID string
	// ClientSecret selects a client-secret credential: the local emulator, or local development
	// against a developer's own app registration. Never the production path (see ManagedIdentity).
	ClientSecret string
	// AuthorityHost is the Entra endpoint, e.g. https://login.microsoftonline.com (the default) or
	// the emulator's https://127.0.0.1:P. Used only with ClientSecret.
	AuthorityHost string
	// ManagedIdentity selects the host's managed identity: App Service and Functions through
	// IDENTITY_ENDPOINT/IDENTITY_HEADER, which the platform sets, or IMDS elsewhere. azidentity
	// reads those two variables itself; they are the platform's contract, not our configuration.
	ManagedIdentity bool

	// CAFile is a PEM file of extra roots to trust on top of the system pool (the emulator's
	// ca.pem). RootCAs replaces the system pool. Both are ignored when Transport is set.
	CAFile  string
	RootCAs *x509.CertPool
	// Transport carries the token requests; nil builds one with NewHTTPClient(CAFile, RootCAs).
	// Pass the client the other SDKs use so the process has one connection pool.
	Transport policy.Transporter
	// Retry tunes azcore's retries of token requests; the zero value means its defaults.
	Retry policy.RetryOptions
}

// Kind names the credential NewCredential chose, for the start-up log line.
func (o Options) Kind() string {
	switch {
	case o.ClientSecret != "" && o.ManagedIdentity:
		return "ambiguous"
	case o.ClientSecret != "":
		return "client-secret"
	case o.ManagedIdentity && o.ClientID != "":
		return "managed-identity (user-assigned)"
	case o.ManagedIdentity:
		return "managed-identity (system-assigned)"
	}
	return "none"
}

// NewCredential returns the credential Options describe. The rules, in full:
//
//   - ClientSecret set: a ClientSecretCredential for TenantID/ClientID at AuthorityHost. Instance
//     discovery is switched off when AuthorityHost is not one of Entra's own hosts, because it
//     would ask login.microsoftonline.com about an authority that only exists locally.
//   - ManagedIdentity set: a ManagedIdentityCredential, user-assigned when ClientID is set.
//   - both, or neither: an error.
//
// There is deliberately no DefaultAzureCredential-style chain. A chain picks whichever source
// answers first (environment variables, workload identity, managed identity, a developer's az
// login), so the identity acting in production would depend on what happens to be on the
// machine, and a missing managed identity would silently become someone's personal login.
func NewCredential(opts Options) (azcore.TokenCredential, error) {
	if opts.ClientSecret != "" && opts.ManagedIdentity {
		return nil, errors.New("azauth: both a client secret and managed identity are configured; choose one")
	}
	transport := opts.Transport
	if transport == nil {
		c, err := NewHTTPClient(opts.CAFile, opts.RootCAs)
		if err != nil {
			return nil, fmt.Errorf("azauth: %w", err)
		}
		transport = c
	}
	co := azcore.ClientOptions{Transport: transport, Retry: opts.Retry}

	switch {
	case opts.ClientSecret != "":
		if opts.TenantID == "" || opts.ClientID == "" {
			return nil, errors.New("azauth: a client secret needs a tenant ID and a client ID")
		}
		host := opts.AuthorityHost
		if host == "" {
			host = cloud.AzurePublic.ActiveDirectoryAuthorityHost
		}
		microsoft, err := microsoftAuthority(host)
		if err != nil {
			return nil, err
		}
		// Always set the authority explicitly: left empty, azidentity would read
		// AZURE_AUTHORITY_HOST from the environment, and only internal/config reads settings.
		co.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: host}
		cred, err := azidentity.NewClientSecretCredential(opts.TenantID, opts.ClientID, opts.ClientSecret, &azidentity.ClientSecretCredentialOptions{
			ClientOptions:            co,
			DisableInstanceDiscovery: !microsoft,
		})
		if err != nil {
			return nil, fmt.Errorf("azauth: client secret credential: %w", err)
		}
		return cred, nil
	case opts.ManagedIdentity:
		mo := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: co}
		if opts.ClientID != "" {
			mo.ID = azidentity.ClientID(opts.ClientID)
		}
		cred, err := azidentity.NewManagedIdentityCredential(mo)
		if err != nil {
			return nil, fmt.Errorf("azauth: managed identity credential: %w", err)
		}
		return cred, nil
	}
	return nil, errors.New("azauth: no credential configured: set a client secret (emulator, local development) or use the managed identity (Azure)")
}

// entraHosts are the authorities Entra serves itself, public and sovereign. MSAL trusts these
// without instance discovery too; for any other host discovery would fail or, worse, be asked
// about a host Microsoft has never heard of.
var entraHosts = map[string]bool{
	"login.microsoftonline.com":        true,
	"login.microsoft.com":              true,
	"login.windows.net":                true,
	"sts.windows.net":                  true,
	"login.microsoftonline.us":         true,
	"login-us.microsoftonline.com":     true,
	"login.usgovcloudapi.net":          true,
	"login.chinacloudapi.cn":           true,
	"login.partner.microsoftonline.cn": true,
	"login.microsoftonline.de":         true,
}

// microsoftAuthority validates host and reports whether it is one of Entra's own.
func microsoftAuthority(host string) (bool, error) {
	u, err := url.Parse(host)
	if err != nil {
		return false, fmt.Errorf("azauth: authority host: %w", err)
	}
	if u.Scheme != "https" || u.Hostname() == "" {
		// MSAL and azidentity refuse anything else too; saying so here names the setting.
		return false, fmt.Errorf("azauth: authority host %q: want https://<host>", host)
	}
	return entraHosts[strings.ToLower(u.Hostname())], nil
}
