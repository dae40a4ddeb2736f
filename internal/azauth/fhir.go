package azauth

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"appreg/internal/azerr"
	"appreg/internal/registrar"
)

// FHIRReader reads a FHIR service as a client registered by appreg will: a client_credentials
// token for the service's audience (its base URL), then GET <url>/Patient?_count=1. It
// implements registrar.FHIRProber.
type FHIRReader struct {
	TenantID      string
	AuthorityHost string // "" = https://login.microsoftonline.com
	// Transport carries the token request; HTTPClient the FHIR request. Both may be the
	// process's shared client.
	Transport  policy.Transporter
	HTTPClient *http.Client
}

var _ registrar.FHIRProber = (*FHIRReader)(nil)

// ReadFHIR returns nil when the service answers 200. A 403 ("Authorization failed.": a valid
// token whose principal holds no FHIR role yet) is CodeForbidden, what the registrar waits out;
// a 401 ("Authentication failed.") means the service refuses the token itself — a wrong audience
// or a service trusting another tenant — and is CodeInvalid, as no wait will change it.
func (f *FHIRReader) ReadFHIR(ctx context.Context, serviceURL, appID string, secret registrar.SecretValue) error {
	const op = "fhir.read"
	base := strings.TrimSuffix(serviceURL, "/")
	token, err := clientToken(ctx, op, f.TenantID, f.AuthorityHost, appID, secret, base+"/.default", f.Transport)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/Patient?_count=1", nil)
	if err != nil {
		return &registrar.Error{Code: registrar.CodeInvalid, Op: op, Message: fmt.Sprintf("the FHIR service URL %q is not usable: %v", serviceURL, err)}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/fhir+json")
	client := f.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return azerr.Transport(op, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	r := azerr.Response{Status: resp.StatusCode, RetryAfter: azerr.RetryAfter(resp.Header, time.Now())}
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusForbidden:
		return r.Error(op, registrar.CodeForbidden, "the FHIR service does not let the client read yet (its role takes up to 10 minutes to take effect)", nil)
	case resp.StatusCode == http.StatusUnauthorized:
		return r.Error(op, registrar.CodeInvalid, "the FHIR service refuses the client's token: check that "+base+" is the service's audience and that it trusts this tenant", nil)
	case resp.StatusCode == http.StatusNotFound:
		return r.Error(op, registrar.CodeInvalid, "no FHIR service answers at "+base, nil)
	}
	return r.Error(op, azerr.Classify(resp.StatusCode), "the FHIR service did not answer", nil)
}
