// Package azerr classifies failed calls to Azure — Entra's token endpoint, Microsoft Graph, Key
// Vault — into the registrar's error codes, once, for every adapter. Each adapter first reads
// what its service said (status, error code, inner codes, message, Retry-After) into a Response
// and handles the few answers whose meaning is its service's own (Graph's 404 while a new object
// replicates, Key Vault's deleted-but-recoverable 409); everything else — what a 403 means, what
// a refused token request means, how Retry-After is read, how long a quoted message may be — is
// decided here, so the same failure means the same thing whichever SDK met it.
//
// Nothing here copies a response body or a request: errors carry the status, the service's codes
// and its one-line message, clipped, so they are safe to log and to publish.
package azerr

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"appreg/internal/registrar"
)

// MaxMessage bounds a service message quoted in an error: enough for any real one, and a guard
// against a proxy answering with a page of HTML.
const MaxMessage = 300

// Response is what a service answered to a failed call.
type Response struct {
	Status     int
	Code       string   // the service's error code (Graph's error.code, Key Vault's, an AADSTS code)
	Inner      []string // inner or detail codes
	Message    string   // the service's one-line message
	RetryAfter time.Duration
}

// HasCode reports whether code is the response's code or one of its inner codes.
func (r Response) HasCode(code string) bool {
	if r.Code == code {
		return true
	}
	for _, c := range r.Inner {
		if c == code {
			return true
		}
	}
	return false
}

// Classify maps a status to what the caller should do, for answers no service-specific rule
// claimed. 401 and 403 are a permission (or token) problem that an operator or time fixes: role
// assignments and managed-identity tokens take minutes to catch up.
func Classify(status int) registrar.Code {
	switch {
	case status == http.StatusNotFound:
		return registrar.CodeNotFound
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return registrar.CodeForbidden
	case status == http.StatusConflict, status == http.StatusPreconditionFailed:
		return registrar.CodeConflict
	case status == http.StatusTooManyRequests:
		return registrar.CodeThrottled
	case status == http.StatusRequestTimeout, status >= 500:
		return registrar.CodeUnavailable
	case status == http.StatusBadRequest, status == http.StatusRequestEntityTooLarge,
		status == http.StatusRequestURITooLong, status == http.StatusUnprocessableEntity:
		// The service read the request and refused it as it is: sending it again cannot help.
		return registrar.CodeInvalid
	}
	// Anything else (410, 415, a redirect) means the request went somewhere unexpected.
	return registrar.CodeInternal
}

// Describe is the safe, short text of a response: "HTTP 403 Authorization_RequestDenied:
// Insufficient privileges to complete the operation."
func (r Response) Describe() string {
	s := "HTTP " + strconv.Itoa(r.Status)
	if r.Code != "" {
		s += " " + r.Code
	}
	for _, c := range r.Inner {
		if c != "" && c != r.Code {
			s += "/" + c
		}
	}
	if m := Clip(r.Message); m != "" {
		s += ": " + m
	}
	return s
}

// Error is the registrar error for a response, with a code the caller chose (Classify's, or a
// service rule's) and a message prefix that says what failed.
func (r Response) Error(op string, code registrar.Code, what string, cause error) *registrar.Error {
	msg := r.Describe()
	if what != "" {
		msg = what + " (" + msg + ")"
	}
	return &registrar.Error{Code: code, Op: op, Message: msg, RetryAfter: r.RetryAfter, Err: cause}
}

// Transport classifies an error that brought no service response: a failed token request, a
// cancellation, a TLS verification failure or the network.
func Transport(op string, err error) *registrar.Error {
	var afe *azidentity.AuthenticationFailedError
	switch {
	case errors.As(err, &afe):
		return Token(op, afe)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &registrar.Error{Code: registrar.CodeUnavailable, Op: op, Message: "request cancelled or timed out: " + Clip(err.Error()), Err: err}
	case isTLSVerification(err):
		// A configuration fault (a wrong CA file or host), not an outage; the message says so.
		return &registrar.Error{Code: registrar.CodeInternal, Op: op, Message: "TLS verification failed: " + Clip(err.Error()), Err: err}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return &registrar.Error{Code: registrar.CodeUnavailable, Op: op, Message: "connection failed: " + Clip(err.Error()), Err: err}
	}
	return &registrar.Error{Code: registrar.CodeInternal, Op: op, Message: "unexpected failure: " + Clip(err.Error()), Err: err}
}

// Token classifies a failed token request for appreg's own identity. A 4xx from Entra or the
// managed-identity endpoint means the identity is misconfigured or not yet granted, which is
// treated like a missing permission; a 5xx or 429 means the endpoint is not answering. The error
// wraps only what TokenResponse quotes: azidentity's own error prints Entra's whole body, and
// its request carries the client secret.
func Token(op string, afe *azidentity.AuthenticationFailedError) *registrar.Error {
	r, ok := TokenResponse(afe)
	if !ok {
		msg := "token request failed without a response"
		return &registrar.Error{Code: registrar.CodeUnavailable, Op: op, Message: msg, Err: errors.New(msg)}
	}
	code := registrar.CodeForbidden
	if r.Status >= 500 || r.Status == http.StatusTooManyRequests || r.Status == http.StatusRequestTimeout {
		code = registrar.CodeUnavailable
	}
	msg := "token request refused (Entra " + r.Describe() + ")"
	return &registrar.Error{Code: code, Op: op, Message: msg, RetryAfter: r.RetryAfter, Err: errors.New(msg)}
}

// tokenError is the token endpoint's error body.
type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	ErrorCodes  []int  `json:"error_codes"`
}

var aadsts = regexp.MustCompile(`AADSTS(\d+)`)

// TokenResponse reads a failed token request: its status, the AADSTS code as Code ("AADSTS7000215")
// and the OAuth error ("invalid_client") as Message. It never keeps the description, which can
// quote the request.
func TokenResponse(afe *azidentity.AuthenticationFailedError) (Response, bool) {
	resp := afe.RawResponse
	if resp == nil {
		return Response{}, false
	}
	body, _ := runtime.Payload(resp)
	return TokenErrorResponse(resp, body), true
}

// TokenErrorResponse is TokenResponse for a token endpoint answer read without azidentity.
func TokenErrorResponse(resp *http.Response, body []byte) Response {
	r := Response{Status: resp.StatusCode, RetryAfter: RetryAfter(resp.Header, time.Now())}
	var te tokenError
	if json.Unmarshal(body, &te) == nil {
		r.Message = Clip(te.Error)
		if m := aadsts.FindStringSubmatch(te.Description); m != nil {
			r.Code = "AADSTS" + m[1]
		} else if len(te.ErrorCodes) > 0 {
			r.Code = "AADSTS" + strconv.Itoa(te.ErrorCodes[0])
		}
	}
	return r
}

// RetryAfter reads the server's hint in azcore's order of preference: Retry-After-Ms,
// x-ms-retry-after-ms, then Retry-After as seconds (Graph sends fractions, "2.128") or an
// HTTP-date. No hint, or a useless one, is 0.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	for _, k := range []string{"Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
		if v := strings.TrimSpace(h.Get(k)); v != "" {
			if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && ms < 1e9 {
				return time.Duration(ms * float64(time.Millisecond))
			}
		}
	}
	return ParseRetryAfter(h.Get("Retry-After"), now)
}

// ParseRetryAfter reads one Retry-After value: delay-seconds, fractional or not, or an HTTP-date.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s > 0 && s < 1e6 {
			return time.Duration(s * float64(time.Second))
		}
		return 0
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Clip makes s one line of at most MaxMessage bytes, cut on a rune boundary.
func Clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= MaxMessage {
		return s
	}
	cut := MaxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isTLSVerification(err error) bool {
	var cve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cve) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
}
