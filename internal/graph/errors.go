package graph

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

	"appreg/internal/registrar"
)

// Graph error codes the adapter reacts to.
const (
	codeResourceNotFound     = "Request_ResourceNotFound"
	codeNoBackingApplication = "NoBackingApplicationObject"
)

// maxMessage bounds the Graph message copied into a registrar.Error, which is published in
// events; Graph's messages are one sentence, so this only guards against a misbehaving proxy.
const maxMessage = 300

// graphError is what the adapter learned from a failed call.
type graphError struct {
	status     int    // 0 when no response arrived
	code       string // Graph's error.code, or ""
	message    string // Graph's error.message, or ""
	details    []string
	retryAfter time.Duration
}

// replication reports an answer Graph gives while a write it acknowledged has not yet reached
// the replica serving this request.
func (g graphError) replication() bool {
	if g.status == http.StatusNotFound {
		return true
	}
	if g.status == http.StatusBadRequest {
		if g.code == codeNoBackingApplication {
			return true
		}
		for _, d := range g.details {
			if d == codeNoBackingApplication {
				return true
			}
		}
	}
	return false
}

// inspect extracts status, Graph code and Retry-After from an SDK error.
func inspect(err error) (graphError, bool) {
	var apiErr abstractions.ApiErrorable
	if !errors.As(err, &apiErr) {
		return graphError{}, false
	}
	g := graphError{status: apiErr.GetStatusCode()}
	if h := apiErr.GetResponseHeaders(); h != nil {
		if v := h.Get("Retry-After"); len(v) > 0 {
			g.retryAfter = parseRetryAfter(v[0], time.Now())
		}
	}
	var odata *odataerrors.ODataError
	if errors.As(err, &odata) {
		if main := odata.GetErrorEscaped(); main != nil {
			g.code = deref(main.GetCode())
			g.message = deref(main.GetMessage())
			for _, d := range main.GetDetails() {
				if d != nil {
					g.details = append(g.details, deref(d.GetCode()))
				}
			}
		}
	}
	return g, true
}

// parseRetryAfter reads delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// notFound says what a 404 means to the operation that got it.
type notFound int

const (
	// absent: the object does not exist.
	absent notFound = iota
	// replicating: the caller just created or read the object, so a 404 means the replica
	// serving this request has not caught up.
	replicating
)

// translate turns an SDK error into the registrar's error. It never copies a response body:
// only the status, Graph's error code and its one-line message.
func translate(op string, err error, nf notFound) error {
	if err == nil {
		return nil
	}
	e := &registrar.Error{Op: op, Err: err}
	g, ok := inspect(err)
	if !ok {
		e.Code, e.Message = transportFailure(err)
		return e
	}
	e.Message = describe(g)
	e.RetryAfter = g.retryAfter
	switch {
	case g.status == http.StatusBadRequest && g.replication():
		e.Code = registrar.CodeReplicating
	case g.status == http.StatusNotFound && nf == replicating:
		e.Code = registrar.CodeReplicating
	case g.status == http.StatusNotFound:
		e.Code = registrar.CodeNotFound
	case g.status == http.StatusUnauthorized, g.status == http.StatusForbidden:
		// 401 means Graph refused our token (wrong audience, expired, no roles yet): like a
		// missing permission, only an operator or time fixes it.
		e.Code = registrar.CodeForbidden
	case g.status == http.StatusConflict, g.status == http.StatusPreconditionFailed:
		e.Code = registrar.CodeConflict
	case g.status == http.StatusTooManyRequests:
		e.Code = registrar.CodeThrottled
	case g.status == http.StatusRequestTimeout, g.status >= 500:
		e.Code = registrar.CodeUnavailable
	case g.status >= 400:
		e.Code = registrar.CodeInvalid
	default:
		e.Code = registrar.CodeInternal
	}
	return e
}

// describe is the safe, short text of a Graph failure.
func describe(g graphError) string {
	msg := truncate(g.message)
	switch {
	case g.code != "" && msg != "":
		return fmt.Sprintf("HTTP %d %s: %s", g.status, g.code, msg)
	case g.code != "":
		return fmt.Sprintf("HTTP %d %s", g.status, g.code)
	default:
		return fmt.Sprintf("HTTP %d", g.status)
	}
}

// transportFailure classifies an error that came without a Graph response.
func transportFailure(err error) (registrar.Code, string) {
	var authErr *azidentity.AuthenticationFailedError
	switch {
	case errors.As(err, &authErr):
		// Its text embeds Entra's raw response; only the status is repeated here.
		if authErr.RawResponse != nil {
			status := authErr.RawResponse.StatusCode
			if status == http.StatusBadRequest || status == http.StatusUnauthorized {
				return registrar.CodeForbidden, fmt.Sprintf("token request refused: HTTP %d", status)
			}
			return registrar.CodeUnavailable, fmt.Sprintf("token request failed: HTTP %d", status)
		}
		return registrar.CodeUnavailable, "token request failed"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return registrar.CodeUnavailable, err.Error()
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return registrar.CodeUnavailable, "connection failed: " + netErr.Error()
	}
	return registrar.CodeInternal, truncate("unexpected failure: " + err.Error())
}

func truncate(s string) string {
	if len(s) > maxMessage {
		return strings.ToValidUTF8(s[:maxMessage], "") + "…"
	}
	return s
}
