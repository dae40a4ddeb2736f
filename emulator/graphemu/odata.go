package graphemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Content types Graph answers with: entity bodies carry the OData parameters, errors do not.
const (
	contentTypeOData = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
	contentTypeError = "application/json"
)

// ordered is a JSON object that keeps its keys in the order Graph writes them; encoding/json
// would sort a map's keys.
type ordered []kv

type kv struct {
	k string
	v any
}

func (o ordered) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(f.v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.k, err)
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// reply is what an operation hands back to the pipeline, which adds Graph's headers.
type reply struct {
	status int
	body   any // nil: no body
	err    *odataError
	header http.Header
	// innerCode is innerError.code, which Graph's throttling answers carry ("429").
	innerCode string
}

func ok(status int, body any) reply { return reply{status: status, body: body} }

func noContent() reply { return reply{status: http.StatusNoContent} }

// odataError is the error object of Graph's envelope; innerError is filled in when written.
type odataError struct {
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Details []errorDetail `json:"details,omitempty"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Target  string `json:"target,omitempty"`
}

func fail(status int, code, format string, args ...any) reply {
	return reply{status: status, err: &odataError{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// The errors Graph's directory answers with; messages follow Graph's wording where known.
func errNotFound(id string) reply {
	return fail(http.StatusNotFound, "Request_ResourceNotFound",
		"Resource '%s' does not exist or one of its queried reference-property objects are not present.", id)
}

// DefaultObjectQuota is how many directory objects a principal without an admin role may create
// in Entra, soft-deleted ones included.
const DefaultObjectQuota = 250

// errQuotaExceeded is Entra's refusal of a create beyond the creator's object quota.
func errQuotaExceeded() reply {
	return fail(http.StatusBadRequest, "Directory_QuotaExceeded",
		"The directory object quota limit for the Principal has been exceeded. Please ask your administrator to increase the quota limit or delete objects to reduce the used quota.")
}

func errDenied() reply {
	return fail(http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
}

func errBadRequest(format string, args ...any) reply {
	return fail(http.StatusBadRequest, "Request_BadRequest", format, args...)
}

func errInvalidValue(prop, resource string) reply {
	return errBadRequest("Invalid value specified for property '%s' of resource '%s'.", prop, resource)
}

func errUnreadableBody() reply {
	return fail(http.StatusBadRequest, "BadRequest",
		"Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
}

func errNoBackingApp(appID string) reply {
	msg := fmt.Sprintf("The appId '%s' of the service principal does not reference a valid application object.", appID)
	r := fail(http.StatusBadRequest, "Request_BadRequest", "%s", msg)
	r.err.Details = []errorDetail{{Code: "NoBackingApplicationObject", Message: msg, Target: "appId"}}
	return r
}

// defaultCode is the OData code Graph pairs with a status when a test injects only the status.
func defaultCode(status int) (code, message string) {
	switch status {
	case http.StatusBadRequest:
		return "BadRequest", "The request is invalid."
	case http.StatusUnauthorized:
		return "InvalidAuthenticationToken", "Access token validation failure."
	case http.StatusForbidden:
		return "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
	case http.StatusNotFound:
		return "Request_ResourceNotFound", "Resource does not exist or one of its queried reference-property objects are not present."
	case http.StatusConflict:
		return "Request_MultipleObjectsWithSameKeyValue", "Another object with the same value for property already exists."
	case http.StatusTooManyRequests:
		return "TooManyRequests", "Too many requests. Retry after the period in the Retry-After header."
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable", "The service is temporarily unavailable. Please retry later."
	case http.StatusGatewayTimeout:
		return "GatewayTimeout", "The gateway timed out."
	}
	return "InternalServerError", "An internal server error occurred."
}

// Graph's timestamps: directory objects to the second, credentials to the 100 ns tick.
const (
	layoutCreated    = "2006-01-02T15:04:05Z"
	layoutCredential = "2006-01-02T15:04:05.0000000Z"
	layoutInnerDate  = "2006-01-02T15:04:05" // innerError.date has no zone designator
)

func fmtCreated(t time.Time) string    { return t.UTC().Format(layoutCreated) }
func fmtCredential(t time.Time) string { return t.UTC().Format(layoutCredential) }

// jsonString encodes s as a JSON value for the property store.
func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

func jsonValue(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// parseKey reads an OData key segment: a bare id, "('id')" or "(prop='value')", where a doubled
// single quote stands for one. prop is "" for the primary key.
func parseKey(seg string) (prop, value string, ok bool) {
	inner, isParen := strings.CutPrefix(seg, "(")
	if !isParen {
		return "", seg, seg != ""
	}
	inner, closed := strings.CutSuffix(inner, ")")
	if !closed {
		return "", "", false
	}
	if name, lit, found := strings.Cut(inner, "="); found && !strings.HasPrefix(inner, "'") {
		prop, inner = strings.TrimSpace(name), strings.TrimSpace(lit)
	}
	v, ok := unquote(inner)
	if !ok {
		return "", "", false
	}
	return prop, v, true
}

// unquote reads an OData string literal.
func unquote(lit string) (string, bool) {
	if len(lit) < 2 || lit[0] != '\'' || lit[len(lit)-1] != '\'' {
		return "", false
	}
	body := lit[1 : len(lit)-1]
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		if body[i] == '\'' {
			if i+1 < len(body) && body[i+1] == '\'' {
				i++
			} else {
				return "", false
			}
		}
		b.WriteByte(body[i])
	}
	return b.String(), true
}
