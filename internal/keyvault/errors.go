package keyvault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"appreg/internal/registrar"
)

// maxMessage bounds the service text quoted in an error: enough for any Key Vault message, and a
// guard against a proxy answering with a page of HTML.
const maxMessage = 300

// Inner error codes that change the meaning of a status.
const (
	innerDeletedButRecoverable = "ObjectIsDeletedButRecoverable"
	innerBeingDeleted          = "ObjectIsBeingDeleted"
	innerSecretDisabled        = "SecretDisabled"
)

// kvError is Key Vault's error body: {"error":{"code","message","innererror":{"code"}}}.
type kvError struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError *struct {
			Code string `json:"code"`
		} `json:"innererror"`
	} `json:"error"`
}

// entraError is the token endpoint's error body.
type entraError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

var aadsts = regexp.MustCompile(`AADSTS\d+`)

// translate turns whatever azsecrets, azcore or azidentity returned into a *registrar.Error.
//
// The SDK's own errors are never wrapped as they are: *azcore.ResponseError prints the response
// body, *azidentity.AuthenticationFailedError prints the token endpoint's body, and both hold the
// *http.Request, whose body for a set is the secret value and for a token request the client
// secret. The wrapped cause is therefore a bodiless *azcore.ResponseError (status and code only,
// so errors.As still works for callers) or an error carrying only the text quoted in the message.
func translate(op, name string, err error, now time.Time) error {
	if err == nil {
		return nil
	}
	var re *azcore.ResponseError
	var afe *azidentity.AuthenticationFailedError
	switch {
	case errors.As(err, &afe):
		return authError(op, afe)
	case errors.As(err, &re):
		return responseError(op, name, re, now)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &registrar.Error{Code: registrar.CodeUnavailable, Op: op, Message: "request cancelled or timed out: " + clip(err.Error()), Err: err}
	case isTLSVerification(err):
		// A configuration fault (wrong CA file, wrong vault host), not an outage; the message says so.
		return &registrar.Error{Code: registrar.CodeInternal, Op: op, Message: "TLS verification failed: " + clip(err.Error()), Err: err}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return &registrar.Error{Code: registrar.CodeUnavailable, Op: op, Message: clip(err.Error()), Err: err}
	}
	return &registrar.Error{Code: registrar.CodeInternal, Op: op, Message: clip(err.Error()), Err: err}
}

// responseError maps a Key Vault status and error code to a registrar code.
func responseError(op, name string, re *azcore.ResponseError, now time.Time) *registrar.Error {
	code, inner, msg := re.ErrorCode, "", ""
	var retryAfter time.Duration
	if resp := re.RawResponse; resp != nil {
		retryAfter = parseRetryAfter(resp.Header, now)
		if body, err := runtime.Payload(resp); err == nil && len(body) > 0 {
			var kv kvError
			if json.Unmarshal(body, &kv) == nil {
				if code == "" {
					code = kv.Error.Code
				}
				msg = kv.Error.Message
				if kv.Error.InnerError != nil {
					inner = kv.Error.InnerError.Code
				}
			}
		}
	}
	e := &registrar.Error{
		Op:         op,
		RetryAfter: retryAfter,
		Err:        &azcore.ResponseError{StatusCode: re.StatusCode, ErrorCode: re.ErrorCode},
	}
	subject := fmt.Sprintf("secret %q", name)
	if name == "" {
		subject = "the vault's secrets" // a list, which names no secret
	}
	describe := func(prefix string) string {
		s := fmt.Sprintf("%s (Key Vault %d %s", prefix, re.StatusCode, orUnknown(code))
		if inner != "" {
			s += "/" + inner
		}
		s += ")"
		if msg != "" {
			s += ": " + clip(msg)
		}
		return s
	}
	switch status := re.StatusCode; {
	case status == http.StatusNotFound:
		e.Code, e.Message = registrar.CodeNotFound, describe(subject+" not found")
	case status == http.StatusConflict && inner == innerBeingDeleted:
		// A delete, purge or recover is still settling; it finishes within seconds, after which
		// the same request either succeeds or meets the permanent deleted-but-recoverable state.
		e.Code, e.Message = registrar.CodeUnavailable, describe(subject+" is being deleted or recovered")
	case status == http.StatusConflict && inner == innerDeletedButRecoverable:
		e.Code = registrar.CodeConflict
		e.Message = describe(subject + " is deleted but recoverable; an operator must recover or purge it before the name can be used")
	case status == http.StatusConflict:
		e.Code, e.Message = registrar.CodeConflict, describe(subject+" is in a conflicting state")
	case status == http.StatusForbidden && inner == innerSecretDisabled:
		// Not a permission problem: someone disabled the current version, and retrying will not
		// enable it again.
		e.Code, e.Message = registrar.CodeConflict, describe("the current version of "+subject+" is disabled")
	case status == http.StatusBadRequest, status == http.StatusRequestEntityTooLarge:
		e.Code, e.Message = registrar.CodeInvalid, describe("Key Vault refused the request")
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		e.Code, e.Message = registrar.CodeForbidden, describe("not authorised on the vault")
	case status == http.StatusTooManyRequests:
		e.Code, e.Message = registrar.CodeThrottled, describe("throttled")
	case status >= 500, status == http.StatusRequestTimeout:
		e.Code, e.Message = registrar.CodeUnavailable, describe("Key Vault unavailable")
	default:
		e.Code, e.Message = registrar.CodeInternal, describe("unexpected response")
	}
	return e
}

// authError maps a failed token request. A 4xx from the token endpoint means our identity is
// misconfigured (wrong secret, unknown client), which the registrar treats like a missing
// permission; anything else means Entra or the identity endpoint is not answering.
func authError(op string, afe *azidentity.AuthenticationFailedError) *registrar.Error {
	resp := afe.RawResponse
	if resp == nil {
		return &registrar.Error{Code: registrar.CodeUnavailable, Op: op, Message: "token request failed without a response",
			Err: errors.New("token request failed without a response")}
	}
	detail := strconv.Itoa(resp.StatusCode)
	if body, err := runtime.Payload(resp); err == nil {
		var ee entraError
		if json.Unmarshal(body, &ee) == nil && ee.Error != "" {
			detail += " " + clip(ee.Error)
			if c := aadsts.FindString(ee.Description); c != "" {
				detail += " " + c
			}
		}
	}
	msg := "token request failed (Entra " + detail + ")"
	code := registrar.CodeForbidden
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		code = registrar.CodeUnavailable
	}
	return &registrar.Error{Code: code, Op: op, Message: msg, Err: errors.New(msg)}
}

// parseRetryAfter reads the headers azcore honours, in its order of preference.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	for _, k := range []string{"Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
		if v := h.Get(k); v != "" {
			if ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && ms > 0 {
				return time.Duration(ms) * time.Millisecond
			}
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s > 0 {
			return time.Duration(s) * time.Second
		}
		return 0
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func isTLSVerification(err error) bool {
	var cve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cve) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
}

// clip shortens s to one line of at most maxMessage bytes, on a rune boundary.
func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func orUnknown(code string) string {
	if code == "" {
		return "no error code"
	}
	return code
}
