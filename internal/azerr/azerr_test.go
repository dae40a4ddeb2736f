package azerr

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

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"appreg/internal/registrar"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		status int
		want   registrar.Code
	}{
		{400, registrar.CodeInvalid}, {401, registrar.CodeForbidden}, {403, registrar.CodeForbidden},
		{404, registrar.CodeNotFound}, {408, registrar.CodeUnavailable}, {409, registrar.CodeConflict},
		{410, registrar.CodeInternal}, {412, registrar.CodeConflict}, {413, registrar.CodeInvalid}, {415, registrar.CodeInternal}, {429, registrar.CodeThrottled},
		{500, registrar.CodeUnavailable}, {503, registrar.CodeUnavailable}, {302, registrar.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			if got := Classify(tt.status); got != tt.want {
				t.Errorf("Classify(%d) = %s, want %s", tt.status, got, tt.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"1", time.Second},
		{" 30 ", 30 * time.Second},
		{"2.128", 2128 * time.Millisecond}, // Graph's throttling documentation shows fractions
		{"0", 0},
		{"-1", 0},
		{"soon", 0},
		{"", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := ParseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestRetryAfterPrefersMilliseconds(t *testing.T) {
	h := http.Header{}
	h.Set("Retry-After", "5")
	h.Set("Retry-After-Ms", "250")
	if got := RetryAfter(h, time.Now()); got != 250*time.Millisecond {
		t.Errorf("RetryAfter = %v, want 250ms", got)
	}
	h.Del("Retry-After-Ms")
	h.Set("X-Ms-Retry-After-Ms", "1500")
	if got := RetryAfter(h, time.Now()); got != 1500*time.Millisecond {
		t.Errorf("RetryAfter = %v, want 1.5s", got)
	}
}

func tokenFailure(status int, body string) *azidentity.AuthenticationFailedError {
	return &azidentity.AuthenticationFailedError{RawResponse: &http.Response{
		StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
		Body:    io.NopCloser(strings.NewReader(body)),
		Request: &http.Request{Method: http.MethodPost, URL: &url.URL{Scheme: "https", Host: "login.example", Path: "/t/oauth2/v2.0/token"}},
	}}
}

func TestToken(t *testing.T) {
	const secret = "s3cr3t-that-must-not-print"
	tests := []struct {
		name   string
		afe    *azidentity.AuthenticationFailedError
		code   registrar.Code
		aadsts string
	}{
		{"BadSecret", tokenFailure(401, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. `+secret+`","error_codes":[7000215]}`), registrar.CodeForbidden, "AADSTS7000215"},
		{"UnknownResource", tokenFailure(400, `{"error":"invalid_resource","error_description":"AADSTS500011: The resource principal named https://x was not found in the tenant.","error_codes":[500011]}`), registrar.CodeForbidden, "AADSTS500011"},
		{"CodesOnly", tokenFailure(400, `{"error":"unauthorized_client","error_codes":[700016]}`), registrar.CodeForbidden, "AADSTS700016"},
		{"Throttled", tokenFailure(429, `{}`), registrar.CodeUnavailable, ""},
		{"Down", tokenFailure(503, `not json`), registrar.CodeUnavailable, ""},
		{"NoResponse", &azidentity.AuthenticationFailedError{}, registrar.CodeUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Transport("op", fmt.Errorf("wrapped: %w", tt.afe))
			if e.Code != tt.code {
				t.Errorf("code = %s, want %s (%v)", e.Code, tt.code, e)
			}
			if !strings.Contains(e.Error(), tt.aadsts) {
				t.Errorf("error %q does not name %s", e, tt.aadsts)
			}
			if strings.Contains(e.Error(), secret) || errors.Is(e, tt.afe) {
				t.Errorf("the token endpoint's body or error leaked into %v", e)
			}
		})
	}
}

func TestTransport(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "https://127.0.0.1:1/", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}
	for _, tt := range []struct {
		name string
		err  error
		want registrar.Code
	}{
		{"Refused", refused, registrar.CodeUnavailable},
		{"Deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), registrar.CodeUnavailable},
		{"Unknown", errors.New("parse: bad"), registrar.CodeInternal},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Transport("op", tt.err).Code; got != tt.want {
				t.Errorf("code = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestClip(t *testing.T) {
	if got := Clip("a\n  b\tc"); got != "a b c" {
		t.Errorf("Clip joined lines as %q", got)
	}
	long := Clip(strings.Repeat("é", 400))
	if len(long) > MaxMessage+len("…") || !strings.HasSuffix(long, "…") {
		t.Errorf("Clip = %d bytes", len(long))
	}
}

func TestDescribe(t *testing.T) {
	r := Response{Status: 409, Code: "Conflict", Inner: []string{"ObjectIsDeletedButRecoverable"}, Message: "Secret x is in a deleted but recoverable state."}
	if got, want := r.Describe(), "HTTP 409 Conflict/ObjectIsDeletedButRecoverable: Secret x is in a deleted but recoverable state."; got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
}
