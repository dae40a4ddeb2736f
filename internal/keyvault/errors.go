package keyvault

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"appreg/internal/azerr"
	"appreg/internal/registrar"
)

// Inner error codes that change the meaning of a status.
const (
	innerDeletedButRecoverable = "ObjectIsDeletedButRecoverable"
	innerBeingDeleted          = "ObjectIsBeingDeleted"
	innerSecretDisabled        = "SecretDisabled"
	innerForbiddenByRBAC       = "ForbiddenByRbac"
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

// translate turns whatever azsecrets, azcore or azidentity returned into a *registrar.Error.
//
// The SDK's own errors are never wrapped as they are: *azcore.ResponseError prints the response
// body, *azidentity.AuthenticationFailedError prints the token endpoint's body, and both hold the
// *http.Request, whose body for a set is the secret value and for a token request the client
// secret. The wrapped cause is therefore a bodiless *azcore.ResponseError (status and code only,
// so errors.As still works for callers), or what azerr builds for failures without a response.
func translate(op, name string, err error, now time.Time) error {
	if err == nil {
		return nil
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return responseError(op, name, re, now)
	}
	return azerr.Transport(op, err)
}

// responseError applies Key Vault's own meanings of a status — a settling delete, a
// soft-deleted name, a disabled version — and leaves the rest to azerr.
func responseError(op, name string, re *azcore.ResponseError, now time.Time) *registrar.Error {
	r := azerr.Response{Status: re.StatusCode, Code: re.ErrorCode}
	if resp := re.RawResponse; resp != nil {
		r.RetryAfter = azerr.RetryAfter(resp.Header, now)
		if body, err := runtime.Payload(resp); err == nil && len(body) > 0 {
			var kv kvError
			if json.Unmarshal(body, &kv) == nil {
				if r.Code == "" {
					r.Code = kv.Error.Code
				}
				r.Message = kv.Error.Message
				if kv.Error.InnerError != nil {
					r.Inner = []string{kv.Error.InnerError.Code}
				}
			}
		}
	}
	if r.Code == "" {
		r.Code = "no error code"
	}
	cause := &azcore.ResponseError{StatusCode: re.StatusCode, ErrorCode: re.ErrorCode}
	subject := fmt.Sprintf("secret %q", name)
	if name == "" {
		subject = "the vault's secrets" // a list, which names no secret
	}
	code, what := azerr.Classify(re.StatusCode), ""
	switch status := re.StatusCode; {
	case status == http.StatusNotFound:
		what = subject + " not found"
	case status == http.StatusConflict && r.HasCode(innerBeingDeleted):
		// A delete, purge or recover is still settling; it finishes within seconds, after which
		// the same request either succeeds or meets the permanent deleted-but-recoverable state.
		code, what = registrar.CodeUnavailable, subject+" is being deleted or recovered"
	case status == http.StatusConflict && r.HasCode(innerDeletedButRecoverable):
		what = subject + " is deleted but recoverable; an operator must recover or purge it before the name can be used"
	case status == http.StatusConflict:
		what = subject + " is in a conflicting state"
	case status == http.StatusForbidden && r.HasCode(innerSecretDisabled):
		// Not a permission problem: someone disabled the current version, and retrying will not
		// enable it again.
		code, what = registrar.CodeConflict, "the current version of "+subject+" is disabled"
	case code == registrar.CodeInvalid:
		what = "Key Vault refused the request"
	case code == registrar.CodeForbidden && r.HasCode(innerForbiddenByRBAC):
		// The vault uses Azure RBAC and no role of the caller's grants this (yet): a missing
		// assignment, or one made minutes ago that has not reached the vault.
		what = fmt.Sprintf("Key Vault's RBAC refused the identity on %s: it needs Key Vault Secrets Officer on the vault (a new role assignment takes up to 10 minutes to apply)", subject)
	case code == registrar.CodeForbidden:
		what = "not authorised on the vault"
	case code == registrar.CodeThrottled:
		what = "throttled"
	case code == registrar.CodeUnavailable:
		what = "Key Vault unavailable"
	default:
		what = "unexpected response"
	}
	return r.Error(op, code, what, cause)
}
