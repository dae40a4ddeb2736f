package keyvault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"appreg/internal/azerr"
	"appreg/internal/registrar"
)

// respErr builds the *azcore.ResponseError azsecrets would return for a Key Vault reply.
func respErr(tb testing.TB, status int, body string, header http.Header) error {
	tb.Helper()
	if header == nil {
		header = http.Header{}
	}
	header.Set("Content-Type", "application/json; charset=utf-8")
	req, err := http.NewRequest(http.MethodPut, "https://vault.example/secrets/s?api-version=x", strings.NewReader(`{"value":"hunter2-request-body"}`))
	if err != nil {
		tb.Fatal(err)
	}
	return runtime.NewResponseError(&http.Response{
		StatusCode: status,
		Status:     fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Header:     header,
		Body:       io.NopCloser(strings.NewReader(body)),
		Request:    req,
	})
}

func kvBody(code, msg, inner string) string {
	if inner == "" {
		return fmt.Sprintf(`{"error":{"code":%q,"message":%q}}`, code, msg)
	}
	return fmt.Sprintf(`{"error":{"code":%q,"message":%q,"innererror":{"code":%q}}}`, code, msg, inner)
}

func TestTranslateResponseErrors(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		status     int
		body       string
		header     http.Header
		want       registrar.Code
		retryAfter time.Duration
		contains   []string
	}{
		{name: "not found", status: 404, body: kvBody("SecretNotFound", "A secret with (name/id) s was not found in this key vault.", ""),
			want: registrar.CodeNotFound, contains: []string{"SecretNotFound", `"s" not found`}},
		{name: "deleted but recoverable", status: 409,
			body: kvBody("Conflict", "Secret s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.", "ObjectIsDeletedButRecoverable"),
			want: registrar.CodeConflict, contains: []string{"Conflict/ObjectIsDeletedButRecoverable", "recover or purge"}},
		{name: "being deleted is transient", status: 409, body: kvBody("Conflict", "being deleted", "ObjectIsBeingDeleted"),
			want: registrar.CodeUnavailable, contains: []string{"ObjectIsBeingDeleted"}},
		{name: "other conflict", status: 409, body: kvBody("Conflict", "no", ""), want: registrar.CodeConflict},
		{name: "bad parameter", status: 400, body: kvBody("BadParameter", "The request URI contains an invalid name: s_", ""),
			want: registrar.CodeInvalid, contains: []string{"BadParameter", "invalid name"}},
		{name: "too large", status: 413, body: "", want: registrar.CodeInvalid},
		{name: "unauthorized", status: 401, body: kvBody("Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.", ""),
			want: registrar.CodeForbidden, contains: []string{"Unauthorized"}},
		{name: "forbidden", status: 403, body: kvBody("Forbidden", "Caller is not authorized to perform action on resource.", "ForbiddenByRbac"),
			want: registrar.CodeForbidden, contains: []string{"Forbidden/ForbiddenByRbac"}},
		{name: "disabled version", status: 403, body: kvBody("Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled"),
			want: registrar.CodeConflict, contains: []string{"disabled"}},
		{name: "throttled seconds", status: 429, body: kvBody("Throttled", "Request was not processed because too many requests were received.", ""),
			header: http.Header{"Retry-After": {"7"}}, want: registrar.CodeThrottled, retryAfter: 7 * time.Second},
		{name: "throttled ms", status: 429, body: "", header: http.Header{"X-Ms-Retry-After-Ms": {"250"}, "Retry-After": {"9"}},
			want: registrar.CodeThrottled, retryAfter: 250 * time.Millisecond},
		{name: "throttled date", status: 429, body: "", header: http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}},
			want: registrar.CodeThrottled, retryAfter: 90 * time.Second},
		{name: "internal", status: 500, body: kvBody("InternalServerError", "oops", ""), want: registrar.CodeUnavailable},
		{name: "unavailable html", status: 503, body: "<html>" + strings.Repeat("x", 1000) + "</html>", want: registrar.CodeUnavailable},
		{name: "gone", status: 410, body: "", want: registrar.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := translate("keyvault.set", "s", respErr(t, tt.status, tt.body, tt.header), now)
			var e *registrar.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %T, want *registrar.Error", err)
			}
			if e.Code != tt.want {
				t.Errorf("code = %s, want %s (%v)", e.Code, tt.want, err)
			}
			if e.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, tt.retryAfter)
			}
			for _, c := range tt.contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("error %q lacks %q", err, c)
				}
			}
			// Neither the message nor anything reachable by unwrapping carries a body.
			var re *azcore.ResponseError
			if !errors.As(err, &re) || re.StatusCode != tt.status || re.RawResponse != nil {
				t.Errorf("wrapped cause = %#v, want a bodiless ResponseError with status %d", re, tt.status)
			}
			for _, printed := range []string{err.Error(), fmt.Sprintf("%+v", e.Err)} {
				for _, leak := range []string{"hunter2", "<html>", "RESPONSE"} {
					if strings.Contains(printed, leak) {
						t.Errorf("%q leaked into %q", leak, printed)
					}
				}
			}
			if len(e.Message) > azerr.MaxMessage+200 {
				t.Errorf("message is %d bytes long", len(e.Message))
			}
		})
	}
}

func TestTranslateOtherErrors(t *testing.T) {
	dial := &url.Error{Op: "Get", URL: "https://vault.example/secrets/s/", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}
	tests := []struct {
		name string
		err  error
		want registrar.Code
		is   error
	}{
		{name: "transport", err: dial, want: registrar.CodeUnavailable},
		{name: "deadline", err: fmt.Errorf("get: %w", context.DeadlineExceeded), want: registrar.CodeUnavailable, is: context.DeadlineExceeded},
		{name: "cancelled", err: context.Canceled, want: registrar.CodeUnavailable, is: context.Canceled},
		{name: "challenge mismatch", err: errors.New(`challenge resource "https://vault.azure.net" doesn't match the requested domain`), want: registrar.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := translate("keyvault.latest", "s", tt.err, time.Now())
			if got := registrar.ErrorCode(err); got != tt.want {
				t.Errorf("code = %s, want %s (%v)", got, tt.want, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
		})
	}
	if translate("op", "s", nil, time.Now()) != nil {
		t.Error("translate(nil) != nil")
	}
}
