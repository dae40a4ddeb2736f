package registrar

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// CommandVerifyAccess proves, some time after a registration, that the client can read the FHIR
// services it was granted: Azure RBAC takes up to ten minutes to take effect, which a
// registration must not spend holding its delivery. The registration sends it to the client's
// session, scheduled; it sends itself again, later, until access works or its deadline passes.
const CommandVerifyAccess = "verify-access"

// Access statuses in events.
const (
	AccessPending    = "pending"    // granted; not yet proven
	AccessVerified   = "verified"   // the client read the service with its secret
	AccessUnverified = "unverified" // not proven before the deadline, or not provable (see reasons)
)

// FHIRAccessStatus is what an event says about one FHIR service.
type FHIRAccessStatus struct {
	Service string   `json:"service"` // ARM id
	URL     string   `json:"url"`
	Roles   []string `json:"roles"`
	Status  string   `json:"status"`
}

// FHIRProber reads a FHIR service as a client would: a client_credentials token for the
// service's audience, then GET <url>/Patient?_count=1. nil means 200; a CodeForbidden error
// means the service refused the client (its role has not taken effect yet); a CodeReplicating
// error means Entra does not accept the secret yet; CodeInvalid means no wait will help (the
// service refuses the token itself, or Entra knows no such resource).
type FHIRProber interface {
	ReadFHIR(ctx context.Context, serviceURL, appID string, secret SecretValue) error
}

// AccessCheckJob is the body of a verify-access command.
type AccessCheckJob struct {
	ClientName string   `json:"clientName"`
	AppID      string   `json:"appId"`
	RequestID  string   `json:"requestId"` // the registration's, for the events
	Services   []string `json:"services"`  // ARM ids
	// Roles are the roles granted per service, for the events; absent in jobs of earlier
	// versions, whose events then name no roles.
	Roles    map[string][]string `json:"roles,omitempty"`
	Deadline time.Time           `json:"deadline"`
	Attempt  int                 `json:"attempt"`
}

// MessageID is the job's Service Bus MessageId: one per registration and attempt.
func (j AccessCheckJob) MessageID() string {
	return fmt.Sprintf("verify-access:%s:%d", j.RequestID, j.Attempt)
}

// managedRoleIDs are the role definitions appreg grants and may therefore remove: the
// allow-listed ones. A role someone granted by hand outside the allow-list is left alone.
func (s *Service) managedRoleIDs() map[string]string {
	out := map[string]string{}
	for _, n := range s.opt.FHIR.Roles {
		out[strings.ToLower(FHIRRoles[n])] = n
	}
	return out
}

// ensureFHIRAccess makes the service principal's FHIR roles what the request asks for, on every
// allow-listed service: missing roles granted, roles no longer asked for removed. A new service
// principal holds nothing yet, so nothing is read for it; an existing one is read once per
// allow-listed service.
func (s *Service) ensureFHIRAccess(ctx context.Context, sp ServicePrincipal, newPrincipal bool, grants []FHIRGrant, log *slog.Logger) ([]FHIRAccessStatus, error) {
	if s.opt.Access == nil || len(s.opt.FHIR.Services) == 0 {
		return nil, nil
	}
	managed := s.managedRoleIDs()
	var out []FHIRAccessStatus
	for _, svc := range s.opt.FHIR.Services {
		var want []string
		i := slices.IndexFunc(grants, func(g FHIRGrant) bool { return strings.EqualFold(g.Service.ID, svc.ID) })
		if i >= 0 {
			want = grants[i].Roles
		}
		var have []RoleAssignment
		if !newPrincipal {
			var err error
			if have, err = s.opt.Access.List(ctx, svc.ID, sp.ObjectID); err != nil {
				return nil, err
			}
		}
		held := map[string]bool{}
		for _, a := range have {
			id := strings.ToLower(a.RoleDefinitionID)
			name, ours := managed[id]
			if !ours {
				continue
			}
			if slices.Contains(want, name) {
				held[id] = true
				continue
			}
			if err := s.opt.Access.Revoke(ctx, a); err != nil {
				return nil, err
			}
			log.Info("FHIR role removed: the request no longer asks for it", slog.String("service", svc.ID), slog.String("role", name))
		}
		for _, name := range want {
			id := FHIRRoles[name]
			if held[strings.ToLower(id)] {
				continue
			}
			err := s.retry(ctx, s.opt.ReplicationTimeout, 0, isReplicating, func() error {
				_, err := s.opt.Access.Grant(ctx, svc.ID, sp.ObjectID, id)
				return err
			})
			if err != nil {
				return nil, err
			}
			log.Info("FHIR role granted", slog.String("service", svc.ID), slog.String("role", name))
		}
		if len(want) > 0 {
			out = append(out, FHIRAccessStatus{Service: svc.ID, URL: svc.URL, Roles: want, Status: AccessPending})
		}
	}
	return out, nil
}

// scheduleAccessCheck sends the first verify-access job for a registration's grants.
func (s *Service) scheduleAccessCheck(ctx context.Context, clientName, appID, requestID string, access []FHIRAccessStatus) error {
	if len(access) == 0 || s.opt.Prober == nil {
		return nil
	}
	job := AccessCheckJob{ClientName: clientName, AppID: appID, RequestID: requestID, Deadline: s.opt.Now().Add(s.opt.AccessVerifyTimeout).UTC()}
	job.Roles = map[string][]string{}
	for _, a := range access {
		job.Services = append(job.Services, a.Service)
		job.Roles[a.Service] = a.Roles
	}
	return s.pub.EnqueueAccessCheck(ctx, job, s.opt.Now().Add(s.opt.AccessCheckDelay))
}

// VerifyAccess handles one verify-access job: read each granted FHIR service with the client's
// secret from Key Vault; announce "access-verified" when every one answers, send the job again
// later while a role has not taken effect, and announce "access-unverified" with the reason when
// the deadline passes or no wait will help.
func (s *Service) VerifyAccess(ctx context.Context, body []byte, d Delivery) (Outcome, error) {
	job, reasons := ParseAccessCheckJob(body)
	base := Event{RequestID: s.requestIDFor(job.RequestID, d), ClientName: job.ClientName, CommandID: d.MessageID}
	if len(reasons) == 0 {
		reasons = checkSession(d, job.ClientName)
	}
	if len(reasons) > 0 {
		return s.rejected(ctx, base, reasons)
	}
	log := s.log.With(slog.String("requestId", job.RequestID), slog.String("clientName", job.ClientName), slog.Int("attempt", job.Attempt))
	out, err := s.persist(ctx, d, log, func(ctx context.Context) (Outcome, error) { return s.verifyAccess(ctx, job, log) })
	if err != nil {
		return s.failed(ctx, base, d, err, log)
	}
	return out, nil
}

func (s *Service) verifyAccess(ctx context.Context, job AccessCheckJob, log *slog.Logger) (Outcome, error) {
	if s.opt.Prober == nil {
		return Outcome{}, nil
	}
	app, err := s.dir.FindApplication(ctx, s.UniqueName(job.ClientName))
	switch {
	case IsNotFound(err):
		log.Info("access check: the application no longer exists; nothing to prove")
		return Outcome{}, nil
	case err != nil:
		return Outcome{}, err
	case !strings.EqualFold(app.AppID, job.AppID):
		log.Info("access check: the application was re-created since; nothing to prove")
		return Outcome{}, nil
	}
	secret, _, err := s.store.Value(ctx, s.SecretName(job.ClientName))
	if err != nil {
		return Outcome{}, err
	}
	ev := Event{RequestID: job.RequestID, ClientName: job.ClientName, AppID: app.AppID, AppObjectID: app.ObjectID}
	pending := false
	for _, id := range job.Services {
		st := FHIRAccessStatus{Service: id, Roles: job.Roles[id], Status: AccessVerified}
		svc, ok := s.opt.FHIR.Service(id)
		if !ok {
			st.Status = AccessUnverified
			ev.Reasons = append(ev.Reasons, Reason{Code: RejectFHIRServiceNotAllowed, Field: "services", Message: "the service is no longer allow-listed: " + clip(id, 150)})
			ev.FHIRAccess = append(ev.FHIRAccess, st)
			continue
		}
		st.URL = svc.URL
		err := s.opt.Prober.ReadFHIR(ctx, svc.URL, app.AppID, secret)
		switch code := ErrorCode(err); {
		case err == nil:
		case code == CodeForbidden || code == CodeReplicating:
			st.Status, pending = AccessPending, true
		case code == CodeInvalid:
			st.Status = AccessUnverified
			ev.Reasons = append(ev.Reasons, Reason{Code: ReasonAccessNotProvable, Field: "services",
				Message: clip("reading "+svc.URL+" cannot work whatever the wait: "+err.Error(), maxReasonText)})
		default:
			secret = SecretValue{}
			return Outcome{}, err
		}
		ev.FHIRAccess = append(ev.FHIRAccess, st)
	}
	secret = SecretValue{}
	switch {
	case pending && s.opt.Now().Before(job.Deadline):
		next := job
		next.Attempt++
		wait := min(s.opt.AccessCheckDelay<<min(job.Attempt, 4), 2*time.Minute)
		log.Info("access check: a FHIR role has not taken effect yet; checking again later", slog.Duration("in", wait))
		return Outcome{}, s.pub.EnqueueAccessCheck(ctx, next, s.opt.Now().Add(wait))
	case pending:
		ev.Type = EventAccessUnverified
		ev.Reasons = append(ev.Reasons, Reason{Code: ReasonAccessNotEffective,
			Message: fmt.Sprintf("the FHIR service still refused the client %v after it was granted its roles; Azure RBAC takes up to 10 minutes: check the role assignments on the service", s.opt.AccessVerifyTimeout)})
	case len(ev.Reasons) > 0:
		ev.Type = EventAccessUnverified
	default:
		ev.Type = EventAccessVerified
	}
	ev, err = s.publish(ctx, ev)
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Event: ev}, nil
}

// ParseAccessCheckJob validates a verify-access job body.
func ParseAccessCheckJob(body []byte) (AccessCheckJob, []Reason) {
	var j AccessCheckJob
	d, reasons := newFields(body)
	if d == nil {
		return j, reasons
	}
	j.ClientName = d.str("clientName", true)
	j.AppID = d.str("appId", true)
	j.RequestID = d.str("requestId", true)
	j.Services = d.strs("services")
	if v, ok := d.take("roles"); ok {
		if err := json.Unmarshal(v, &j.Roles); err != nil {
			d.add(RejectWrongType, "roles", "must be an object of role-name arrays by service id")
		}
	}
	if at := d.str("deadline", true); at != "" {
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			d.add(RejectWrongType, "deadline", "must be an RFC 3339 timestamp")
		}
		j.Deadline = t
	}
	if n, ok := d.integer("attempt"); ok {
		j.Attempt = n
	}
	d.unknown()
	if j.ClientName != "" && !clientNameRE.MatchString(j.ClientName) {
		d.add(RejectInvalidClientName, "clientName", "must match ^[a-z][a-z0-9-]{2,62}$")
	}
	if j.AppID != "" && !guidRE.MatchString(j.AppID) {
		d.add(RejectInvalidID, "appId", "must be a GUID")
	}
	if j.RequestID != "" && !requestIDRE.MatchString(j.RequestID) {
		d.add(RejectInvalidRequestID, "requestId", "must be a request id")
	}
	if j.Attempt < 0 || j.Attempt > 1000 {
		d.add(RejectWrongType, "attempt", "is out of range")
	}
	return j, capReasons(d.reasons)
}
