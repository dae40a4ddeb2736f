package registrar

import (
	"context"
	"log/slog"
	"slices"
	"strings"
)

// MaintenanceJob asks for one client's passwords to be put in order, inside its session:
// superseded ones past RetireAfter, expired ones, orphans past OrphanAfter, and a revocation a
// dead job left unfinished. The scheduler sends it; the work is decided on fresh state here.
type MaintenanceJob struct {
	ClientName string `json:"clientName"`
	AppID      string `json:"appId,omitempty"`
	// Fingerprint digests what the scheduler saw (the latest version and the passwords), so two
	// scheduler runs that saw the same state send one job: it is part of the MessageId.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// MessageID is the job's Service Bus MessageId.
func (j MaintenanceJob) MessageID() string {
	return "maintain:" + j.AppID + ":" + j.Fingerprint
}

// Maintain handles one maintenance job. It publishes a "retired" event per password it removes
// and no outcome of its own: nobody waits on it.
func (s *Service) Maintain(ctx context.Context, body []byte, d Delivery) (Outcome, error) {
	job, reasons := ParseMaintenanceJob(body)
	base := Event{RequestID: s.requestIDFor("", d), ClientName: job.ClientName, CommandID: d.MessageID}
	if len(reasons) == 0 {
		reasons = checkSession(d, job.ClientName)
	}
	if len(reasons) > 0 {
		return s.rejected(ctx, base, reasons)
	}
	log := s.log.With(slog.String("requestId", base.RequestID), slog.String("clientName", job.ClientName), slog.Int("deliveryCount", d.DeliveryCount))
	out, err := s.persist(ctx, d, log, func(ctx context.Context) (Outcome, error) { return Outcome{}, s.maintain(ctx, job, log) })
	if err != nil {
		return s.failed(ctx, base, d, err, log)
	}
	return out, nil
}

func (s *Service) maintain(ctx context.Context, job MaintenanceJob, log *slog.Logger) error {
	unlock, err := s.gate.lock(ctx, job.ClientName)
	if err != nil {
		return err
	}
	defer unlock()

	app, err := s.dir.FindApplication(ctx, s.UniqueName(job.ClientName))
	switch {
	case IsNotFound(err):
		log.Info("maintenance: the application no longer exists; nothing to do")
		return nil
	case err != nil:
		return err
	}
	if s.mayManage(app) != nil || job.AppID != "" && !strings.EqualFold(job.AppID, app.AppID) {
		log.Info("maintenance: the application is not the one the job was made for; nothing to do", slog.String("appId", app.AppID))
		return nil
	}
	log = log.With(slog.String("appId", app.AppID))
	latest, err := s.store.Latest(ctx, s.SecretName(job.ClientName))
	switch {
	case err == nil && !latest.Managed():
		// Someone edited its tags. Its keyId is still what consumers read, so it stays.
		log.Warn("maintenance: the client's Key Vault secret has lost its managed-by tag; keeping the password it names")
	case err == nil && !strings.EqualFold(latest.Tags[KVTagAppID], app.AppID):
		// The app was re-created; its next registration writes a fresh secret.
		log.Warn("maintenance: the latest secret belongs to an earlier application with this name", slog.String("secretAppId", latest.Tags[KVTagAppID]))
		latest = SecretVersion{}
	case IsNotFound(err):
		log.Warn("maintenance: the application has no secret in Key Vault; sweeping orphans only")
	case err != nil:
		return err
	}
	if revoking(latest) {
		// A revoking rotation whose job died before it removed every other password.
		_, err := s.revokeOthers(ctx, app.UniqueName, latest, log)
		return err
	}
	_, err = s.retire(ctx, app, latest, false, log)
	return err
}

// ParseMaintenanceJob validates a maintenance job body.
func ParseMaintenanceJob(body []byte) (MaintenanceJob, []Reason) {
	var j MaintenanceJob
	d, reasons := newFields(body)
	if d == nil {
		return j, reasons
	}
	j.ClientName = d.str("clientName", true)
	j.AppID = d.str("appId", false)
	j.Fingerprint = d.str("fingerprint", false)
	d.unknown()
	if j.ClientName != "" && !clientNameRE.MatchString(j.ClientName) {
		d.add(RejectInvalidClientName, "clientName", "must match ^[a-z][a-z0-9-]{2,62}$")
	}
	if j.AppID != "" && !guidRE.MatchString(j.AppID) {
		d.add(RejectInvalidID, "appId", "must be a GUID")
	}
	slices.SortFunc(d.reasons, func(a, b Reason) int { return strings.Compare(a.Field, b.Field) })
	return j, capReasons(d.reasons)
}
