package graph

import (
	"errors"
	"net/http"
	"strings"
	"time"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

	"appreg/internal/azerr"
	"appreg/internal/registrar"
)

// Graph error codes the adapter reacts to.
const (
	codeResourceNotFound     = "Request_ResourceNotFound"
	codeNoBackingApplication = "NoBackingApplicationObject"
)

// refusals are the Graph error codes that no retry changes, with the rejection each becomes.
// Graph sends some as 400 and some (quota) as 403; the code decides, not the status.
var refusals = map[string]string{
	"Directory_QuotaExceeded":                 registrar.RejectQuotaExceeded,
	"CredentialInvalidLifetimeAsPerAppPolicy": registrar.RejectLifetimePolicy,
	"CredentialTypeNotAllowedAsPerAppPolicy":  registrar.RejectSecretsBlocked,
	"SignInAudienceNotAllowedAsPerAppPolicy":  registrar.RejectAudiencePolicy,
	"TooManyAppPasswords":                     registrar.RejectTooManyPasswords,
	"Directory_ResourceSizeExceeded":          registrar.RejectApplicationTooBig,
}

// inspect reads what Graph answered from an SDK error: status, error code, detail codes,
// message and Retry-After.
func inspect(err error) (azerr.Response, bool) {
	var apiErr abstractions.ApiErrorable
	if !errors.As(err, &apiErr) {
		return azerr.Response{}, false
	}
	r := azerr.Response{Status: apiErr.GetStatusCode()}
	if h := apiErr.GetResponseHeaders(); h != nil {
		hh := http.Header{}
		for _, k := range []string{"Retry-After", "Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
			if v := h.Get(k); len(v) > 0 {
				hh.Set(k, v[0])
			}
		}
		r.RetryAfter = azerr.RetryAfter(hh, time.Now())
	}
	var odata *odataerrors.ODataError
	if errors.As(err, &odata) {
		if main := odata.GetErrorEscaped(); main != nil {
			r.Code = deref(main.GetCode())
			r.Message = deref(main.GetMessage())
			for _, d := range main.GetDetails() {
				if d != nil {
					r.Inner = append(r.Inner, deref(d.GetCode()))
				}
			}
		}
	}
	return r, true
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

// translate turns an SDK error into the registrar's error. Graph's own rules come first — a 404
// or NoBackingApplicationObject while a new object replicates — and azerr decides the rest.
func translate(op string, err error, nf notFound) error {
	if err == nil {
		return nil
	}
	r, ok := inspect(err)
	if !ok {
		return azerr.Transport(op, err)
	}
	code := azerr.Classify(r.Status)
	switch {
	case r.Status == http.StatusBadRequest && r.HasCode(codeNoBackingApplication):
		code = registrar.CodeReplicating
	case r.Status == http.StatusNotFound && nf == replicating:
		code = registrar.CodeReplicating
	}
	e := r.Error(op, code, "", err)
	for c, reason := range refusals {
		if r.HasCode(c) {
			e.Code, e.Reason = registrar.CodeInvalid, reason
		}
	}
	if e.Reason == "" && r.Status == http.StatusBadRequest && uniqueNameTaken(r.Message) {
		// A deleted application keeps its uniqueName for 30 days. Graph says so only in its
		// message, under the generic Request_BadRequest code.
		e.Code, e.Reason = registrar.CodeInvalid, registrar.RejectClientNameReserved
	}
	return e
}

// uniqueNameTaken recognises Graph's "Another object with the same value for property uniqueName
// already exists." It is the one refusal told apart by its message: Graph gives it no code.
func uniqueNameTaken(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "uniquename") && strings.Contains(m, "already exists")
}
