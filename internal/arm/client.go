package arm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/google/uuid"

	"appreg/internal/azerr"
	"appreg/internal/registrar"
)

// ARM error codes the adapter reacts to.
const (
	codeExists           = "RoleAssignmentExists"
	codePrincipalMissing = "PrincipalNotFound"
	codeNotPermitted     = "AuthorizationFailed"
	codeUpdateRefused    = "RoleAssignmentUpdateNotPermitted"
	codeLimitExceeded    = "RoleAssignmentLimitExceeded"
	codeNotFound         = "RoleAssignmentNotFound"
)

// Options configure a Client; nil or zero fields take the defaults.
type Options struct {
	// Endpoint and Audience name Resource Manager: the public cloud's by default, a sovereign
	// cloud's, or the local emulator's.
	Endpoint string
	Audience string
	// Transport carries the requests (an *http.Client trusting a local CA); nil: azcore's.
	Transport policy.Transporter
	// Retry tunes azcore's retries; the zero value means its defaults.
	Retry  policy.RetryOptions
	Logger *slog.Logger
}

// Client manages role assignments through Azure Resource Manager.
type Client struct {
	ra  *armauthorization.RoleAssignmentsClient
	log *slog.Logger
}

var _ registrar.Access = (*Client)(nil)

// New returns a Client that authenticates with cred.
func New(cred azcore.TokenCredential, opts *Options) (*Client, error) {
	if cred == nil {
		return nil, errors.New("arm: nil credential")
	}
	if opts == nil {
		opts = &Options{}
	}
	rm := cloud.AzurePublic.Services[cloud.ResourceManager]
	if opts.Endpoint != "" {
		rm.Endpoint = opts.Endpoint
	}
	if opts.Audience != "" {
		rm.Audience = opts.Audience
	}
	co := &azarm.ClientOptions{
		ClientOptions: policy.ClientOptions{
			Cloud:     cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{cloud.ResourceManager: rm}},
			Transport: opts.Transport,
			Retry:     opts.Retry,
		},
		// appreg assigns roles on resources that exist; it must never register resource
		// providers on a subscription as a side effect of a 409.
		DisableRPRegistration: true,
	}
	// The subscription is only used by subscription-wide listings, which appreg never makes:
	// every call names its scope.
	ra, err := armauthorization.NewRoleAssignmentsClient("", cred, co)
	if err != nil {
		return nil, fmt.Errorf("arm: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{ra: ra, log: log}, nil
}

// assignmentNamespace makes assignment names: UUIDv5 of scope, principal and role, as Microsoft
// recommends (Bicep's guid(scope, principalId, roleDefinitionId)), so a name is the same however
// many times, and on however many instances, a grant runs.
var assignmentNamespace = uuid.MustParse("6b9a4f5e-3c1d-4e8a-9f2b-7d0c1e5a8b34")

// AssignmentName is the deterministic name of the assignment of roleID to principalID at scope.
func AssignmentName(scope, principalID, roleID string) string {
	return uuid.NewSHA1(assignmentNamespace, []byte(strings.ToLower(scope+"|"+principalID+"|"+roleID))).String()
}

// roleDefinitionID is the role's full id at scope's subscription, as ARM wants it.
func roleDefinitionID(scope, roleID string) string {
	sub := ""
	if parts := strings.Split(strings.Trim(scope, "/"), "/"); len(parts) >= 2 && strings.EqualFold(parts[0], "subscriptions") {
		sub = "/subscriptions/" + parts[1]
	}
	return sub + "/providers/Microsoft.Authorization/roleDefinitions/" + roleID
}

// Grant creates the assignment, with principalType ServicePrincipal: without it ARM looks the
// principal up, and a service principal created seconds ago fails with PrincipalNotFound.
func (c *Client) Grant(ctx context.Context, scope, principalID, roleID string) (registrar.RoleAssignment, error) {
	const op = "arm.createRoleAssignment"
	start := time.Now()
	name := AssignmentName(scope, principalID, roleID)
	want := registrar.RoleAssignment{Name: name, Scope: scope, PrincipalID: principalID, RoleDefinitionID: roleID}
	_, err := c.ra.Create(ctx, strings.TrimPrefix(scope, "/"), name, armauthorization.RoleAssignmentCreateParameters{
		Properties: &armauthorization.RoleAssignmentProperties{
			PrincipalID:      &principalID,
			RoleDefinitionID: ptr(roleDefinitionID(scope, roleID)),
			PrincipalType:    ptr(armauthorization.PrincipalTypeServicePrincipal),
			Description:      ptr("granted by appreg"),
		},
	}, nil)
	if r, ok := inspect(err); ok && r.Code == codeExists {
		// The same principal, role and scope under another name (granted by hand, say): what
		// was asked for is there. A read confirms it rather than trusting the error alone.
		have, lerr := c.List(ctx, scope, principalID)
		if lerr == nil {
			for _, a := range have {
				if strings.EqualFold(a.RoleDefinitionID, roleID) {
					c.logCall(ctx, op, start, nil, slog.String("assignment", a.Name), slog.Bool("existed", true))
					return a, nil
				}
			}
		}
	}
	err = translate(op, err, scope, roleID)
	c.logCall(ctx, op, start, err, slog.String("assignment", name), slog.String("scope", scope))
	if err != nil {
		return registrar.RoleAssignment{}, err
	}
	return want, nil
}

// Revoke deletes an assignment. ARM answers 204 for one that does not exist.
func (c *Client) Revoke(ctx context.Context, a registrar.RoleAssignment) error {
	const op = "arm.deleteRoleAssignment"
	start := time.Now()
	_, err := c.ra.Delete(ctx, strings.TrimPrefix(a.Scope, "/"), a.Name, nil)
	if r, ok := inspect(err); ok && (r.Status == http.StatusNotFound || r.Code == codeNotFound) {
		err = nil
	}
	err = translate(op, err, a.Scope, a.RoleDefinitionID)
	c.logCall(ctx, op, start, err, slog.String("assignment", a.Name), slog.String("scope", a.Scope))
	return err
}

// List returns the principal's assignments at scope, and at scopes above and below it, as
// $filter=principalId eq '…' does; only those at exactly scope are kept.
func (c *Client) List(ctx context.Context, scope, principalID string) ([]registrar.RoleAssignment, error) {
	const op = "arm.listRoleAssignments"
	start := time.Now()
	// The SDK appends $filter to the query unencoded; spaces in an HTTP/1.1 request line are a
	// malformed request (400 from any strict server), so they are sent percent-encoded.
	filter := strings.ReplaceAll(fmt.Sprintf("principalId eq '%s'", principalID), " ", "%20")
	pager := c.ra.NewListForScopePager(strings.TrimPrefix(scope, "/"), &armauthorization.RoleAssignmentsClientListForScopeOptions{Filter: &filter})
	var out []registrar.RoleAssignment
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			err = translate(op, err, scope, "")
			c.logCall(ctx, op, start, err, slog.String("scope", scope))
			return nil, err
		}
		for _, a := range page.Value {
			if a == nil || a.Properties == nil || a.Name == nil {
				continue
			}
			p := a.Properties
			if p.Scope != nil && !strings.EqualFold(strings.TrimPrefix(*p.Scope, "/"), strings.TrimPrefix(scope, "/")) {
				continue
			}
			out = append(out, registrar.RoleAssignment{
				Name: *a.Name, Scope: scope, PrincipalID: deref(p.PrincipalID), RoleDefinitionID: lastSegment(deref(p.RoleDefinitionID)),
			})
		}
	}
	c.logCall(ctx, op, start, nil, slog.String("scope", scope), slog.Int("assignments", len(out)))
	return out, nil
}

// inspect reads ARM's status and error code from an SDK error.
func inspect(err error) (azerr.Response, bool) {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return azerr.Response{}, false
	}
	r := azerr.Response{Status: re.StatusCode, Code: re.ErrorCode}
	if re.RawResponse != nil {
		r.RetryAfter = azerr.RetryAfter(re.RawResponse.Header, time.Now())
		if body, err := runtime.Payload(re.RawResponse); err == nil {
			r.Message = armMessage(body)
		}
	}
	return r, true
}

// translate applies ARM's own error codes and leaves the rest to azerr. The wrapped cause is a
// bodiless ResponseError: ARM's messages quote object ids, never secrets, but nothing here needs
// the body.
func translate(op string, err error, scope, roleID string) error {
	if err == nil {
		return nil
	}
	r, ok := inspect(err)
	if !ok {
		return azerr.Transport(op, err)
	}
	cause := &azcore.ResponseError{StatusCode: r.Status, ErrorCode: r.Code}
	code, what, reason := azerr.Classify(r.Status), "", ""
	switch r.Code {
	case codePrincipalMissing:
		code, what = registrar.CodeReplicating, "the service principal has not reached Resource Manager yet"
	case codeNotPermitted:
		// Missing permission, or a request the ABAC condition on appreg's delegation refuses
		// (a role or principal type it does not allow): no retry changes either.
		code, reason = registrar.CodeInvalid, registrar.RejectFHIRAccessRefused
		what = fmt.Sprintf("Resource Manager refused appreg's identity the assignment of role %s at %s", roleID, scope)
	case codeUpdateRefused:
		code, what = registrar.CodeConflict, "an assignment with this name exists for another principal"
	case codeLimitExceeded:
		code, reason, what = registrar.CodeInvalid, registrar.RejectRoleAssignmentLimit, "the subscription has reached its 4,000 role assignments"
	}
	e := r.Error(op, code, what, cause)
	e.Reason = reason
	return e
}

func ptr[T any](v T) *T { return &v }

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func lastSegment(id string) string {
	if i := strings.LastIndex(id, "/"); i >= 0 {
		return id[i+1:]
	}
	return id
}

// logCall records one ARM call at debug level.
func (c *Client) logCall(ctx context.Context, op string, start time.Time, err error, attrs ...slog.Attr) {
	if !c.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs = append(attrs, slog.String("op", op), slog.Duration("elapsed", time.Since(start)))
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "arm call", attrs...)
}
