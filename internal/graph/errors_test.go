package graph

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

	"appreg/internal/azerr"
	"appreg/internal/registrar"
)

// odataErr builds the error the SDK returns for a Graph error response.
func odataErr(status int, code, message string, retryAfter string, details ...string) error {
	main := odataerrors.NewMainError()
	main.SetCode(&code)
	main.SetMessage(&message)
	var ds []odataerrors.ErrorDetailsable
	for _, d := range details {
		ed := odataerrors.NewErrorDetails()
		ed.SetCode(&d)
		ds = append(ds, ed)
	}
	main.SetDetails(ds)
	e := odataerrors.NewODataError()
	e.SetErrorEscaped(main)
	e.SetStatusCode(status)
	h := abstractions.NewResponseHeaders()
	if retryAfter != "" {
		h.Add("Retry-After", retryAfter)
	}
	e.SetResponseHeaders(h)
	return e
}

func TestTranslate(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		nf         notFound
		want       registrar.Code
		retryAfter time.Duration
		message    string
	}{
		{"not found", odataErr(404, codeResourceNotFound, "Resource 'x' does not exist.", ""), absent, registrar.CodeNotFound, 0, "HTTP 404 Request_ResourceNotFound: Resource 'x' does not exist."},
		{"not found after write", odataErr(404, codeResourceNotFound, "gone", ""), replicating, registrar.CodeReplicating, 0, ""},
		{"no backing application in details", odataErr(400, "Request_BadRequest", "The appId 'a' of the service principal does not reference a valid application object.", "", codeNoBackingApplication), absent, registrar.CodeReplicating, 0, ""},
		{"no backing application as code", odataErr(400, codeNoBackingApplication, "no app", ""), absent, registrar.CodeReplicating, 0, ""},
		{"bad request", odataErr(400, "Request_BadRequest", "Invalid value specified for property 'signInAudience'.", ""), replicating, registrar.CodeInvalid, 0, ""},
		{"forbidden", odataErr(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.", ""), absent, registrar.CodeForbidden, 0, "HTTP 403 Authorization_RequestDenied: Insufficient privileges to complete the operation."},
		{"token refused", odataErr(401, "InvalidAuthenticationToken", "Access token is empty.", ""), absent, registrar.CodeForbidden, 0, ""},
		{"conflict", odataErr(409, "Request_MultipleObjectsWithSameKeyValue", "dup", ""), absent, registrar.CodeConflict, 0, ""},
		{"throttled", odataErr(429, "TooManyRequests", "slow down", "7"), absent, registrar.CodeThrottled, 7 * time.Second, ""},
		// Graph documents fractional Retry-After values; Atoi read them as no hint at all.
		{"throttled with a fraction", odataErr(429, "TooManyRequests", "slow down", "2.128"), absent, registrar.CodeThrottled, 2128 * time.Millisecond, ""},
		{"server error", odataErr(500, "generalException", "boom", ""), absent, registrar.CodeUnavailable, 0, ""},
		{"unavailable with hint", odataErr(503, "ServiceUnavailable", "later", "2"), absent, registrar.CodeUnavailable, 2 * time.Second, ""},
		{"api error without body", &abstractions.ApiError{Message: "x", ResponseStatusCode: 502}, absent, registrar.CodeUnavailable, 0, "HTTP 502"},
		{"connection refused", &url.Error{Op: "Get", URL: "https://127.0.0.1:1/v1.0/applications", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, absent, registrar.CodeUnavailable, 0, ""},
		{"deadline", fmt.Errorf("send: %w", context.DeadlineExceeded), absent, registrar.CodeUnavailable, 0, ""},
		{"unknown", errors.New("parse node: invalid character"), absent, registrar.CodeInternal, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := translate("graph.op", tt.err, tt.nf)
			var e *registrar.Error
			if !errors.As(err, &e) {
				t.Fatalf("translate = %T, want *registrar.Error", err)
			}
			if e.Code != tt.want {
				t.Errorf("Code = %s, want %s (%v)", e.Code, tt.want, err)
			}
			if e.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, tt.retryAfter)
			}
			if tt.message != "" && e.Message != tt.message {
				t.Errorf("Message = %q, want %q", e.Message, tt.message)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("the SDK error is not wrapped")
			}
		})
	}
	if translate("graph.op", nil, absent) != nil {
		t.Error("translate(nil) != nil")
	}
}

func TestTranslateBoundsMessage(t *testing.T) {
	err := translate("graph.op", odataErr(400, "Request_BadRequest", strings.Repeat("é", 400), ""), absent)
	if n := len(err.(*registrar.Error).Message); n > azerr.MaxMessage+40 {
		t.Errorf("message is %d bytes", n)
	}
}

// Refusals no retry changes become rejections with their own reason, whatever status Graph used.
func TestTranslateRefusals(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		reason string
	}{
		{"quota as 400", odataErr(400, "Directory_QuotaExceeded", "The directory object quota limit for the Principal has been exceeded.", ""), registrar.RejectQuotaExceeded},
		{"quota as 403", odataErr(403, "Directory_QuotaExceeded", "The directory object quota limit for the Principal has been exceeded.", ""), registrar.RejectQuotaExceeded},
		{"lifetime policy", odataErr(400, "CredentialInvalidLifetimeAsPerAppPolicy", "Credential lifetime exceeds the max value allowed as per assigned policy", ""), registrar.RejectLifetimePolicy},
		{"lifetime policy in details", odataErr(400, "Request_BadRequest", "refused", "", "CredentialInvalidLifetimeAsPerAppPolicy"), registrar.RejectLifetimePolicy},
		{"secrets blocked", odataErr(400, "CredentialTypeNotAllowedAsPerAppPolicy", "Credential type not allowed", ""), registrar.RejectSecretsBlocked},
		{"audience policy", odataErr(400, "SignInAudienceNotAllowedAsPerAppPolicy", "no", ""), registrar.RejectAudiencePolicy},
		{"too many passwords", odataErr(400, "TooManyAppPasswords", "Not allowed to add 3 passwords.", ""), registrar.RejectTooManyPasswords},
		{"object too large", odataErr(400, "Directory_ResourceSizeExceeded", "The size of the object has exceeded its limit.", ""), registrar.RejectApplicationTooBig},
		{"uniqueName reserved", odataErr(400, "Request_BadRequest", "Another object with the same value for property uniqueName already exists.", ""), registrar.RejectClientNameReserved},
		{"plain bad request", odataErr(400, "Request_BadRequest", "Invalid value specified for property 'displayName'.", ""), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := translate("graph.op", tt.err, absent)
			if got := registrar.ReasonOf(err); got != tt.reason {
				t.Errorf("reason = %q, want %q (%v)", got, tt.reason, err)
			}
			if tt.reason != "" && registrar.ErrorCode(err) != registrar.CodeInvalid {
				t.Errorf("code = %s; a refusal is not retried", registrar.ErrorCode(err))
			}
		})
	}
}
