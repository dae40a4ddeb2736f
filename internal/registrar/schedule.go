package registrar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// ScheduleReport summarises one ScheduleRotations run.
type ScheduleReport struct {
	Apps         int `json:"apps"`         // managed applications examined
	Secrets      int `json:"secrets"`      // managed Key Vault secrets found
	Due          int `json:"due"`          // rotation jobs sent (secrets due, or whose password is gone)
	Maintenance  int `json:"maintenance"`  // maintenance jobs sent (passwords that may be retired)
	DeadLettered int `json:"deadLettered"` // dead-lettered commands announced as failed
	Failed       int `json:"failed"`       // jobs or announcements that could not be sent
}

// ScheduleRotations is the timer's whole job, and it only schedules: it reads Key Vault and
// Graph once, and sends each client that needs something a rotation or maintenance job in that
// client's session. It never edits a credential itself, because it runs outside every session:
// a decision it made here could race a registration or rotation of the same client on another
// instance. Each job re-reads the state it acts on, inside the session.
//
// It also announces dead-lettered commands: a command whose last delivery was cut off (a killed
// instance, a lost lock) was dead-lettered without a "failed" event, and nothing may be lost
// silently. It returns an error when any job or announcement could not be sent; the rest are
// still sent.
func (s *Service) ScheduleRotations(ctx context.Context) (ScheduleReport, error) {
	var rep ScheduleReport
	secrets := map[string]SecretVersion{}
	err := s.store.ListManaged(ctx, func(v SecretVersion) error {
		// A disabled secret is a deregistered client's, kept for audit: nothing to schedule.
		if c := v.Tags[KVTagClientName]; c != "" && v.Enabled {
			secrets[c] = v
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	rep.Secrets = len(secrets)
	var apps []App
	if err := s.dir.ListManagedApplications(ctx, func(a App) error { apps = append(apps, a); return nil }); err != nil {
		return rep, err
	}

	var errs []error
	seen := map[string]bool{}
	now := s.opt.Now()
	for _, app := range apps {
		name := app.ClientName()
		if name == "" || !app.Managed() || strings.EqualFold(app.AppID, s.opt.SelfAppID) {
			continue
		}
		seen[name] = true
		rep.Apps++
		secret, hasSecret := secrets[name]
		log := s.log.With(slog.String("clientName", name), slog.String("appId", app.AppID))
		if hasSecret && strings.EqualFold(secret.Tags[KVTagAppID], app.AppID) && s.needsRotation(app, secret, now) {
			job := RotationJob{ClientName: name, AppID: app.AppID, KeyID: secret.KeyID(), Reason: ReasonNearExpiry}
			if err := s.pub.EnqueueRotation(ctx, job); err != nil {
				rep.Failed++
				errs = append(errs, err)
				log.Error("sending a rotation job failed", slog.Any("error", err))
				continue
			}
			rep.Due++
			log.Info("rotation job sent", slog.String("keyId", secret.KeyID()), slog.Time("expires", secret.Expires), slog.String("messageId", job.MessageID()))
			continue // the rotation retires what may go, in the same session
		}
		if !hasSecret {
			secret = SecretVersion{}
		}
		if !s.mayNeedMaintenance(app, secret, now) {
			continue
		}
		job := MaintenanceJob{ClientName: name, AppID: app.AppID, Fingerprint: fingerprint(app, secret, now)}
		if err := s.pub.EnqueueMaintenance(ctx, job); err != nil {
			rep.Failed++
			errs = append(errs, err)
			log.Error("sending a maintenance job failed", slog.Any("error", err))
			continue
		}
		rep.Maintenance++
	}
	for name, v := range secrets {
		if !seen[name] {
			s.log.Warn("managed secret has no managed application; leaving it", slog.String("clientName", name), slog.String("secretId", v.ID))
		}
	}
	if err := s.announceDeadLetters(ctx, &rep); err != nil {
		errs = append(errs, err)
	}
	s.log.Info("rotation schedule run finished", slog.Int("apps", rep.Apps), slog.Int("secrets", rep.Secrets),
		slog.Int("due", rep.Due), slog.Int("maintenance", rep.Maintenance), slog.Int("deadLettered", rep.DeadLettered), slog.Int("failed", rep.Failed))
	return rep, errors.Join(errs...)
}

// mayNeedMaintenance is the scheduler's cheap pre-filter: a job is worth sending when a
// revocation is pending, or when the app has a password other than the latest secret's that some
// rule may remove now — expired, older than the latest version by RetireAfter (superseded), or
// past OrphanAfter (perhaps held by no version). The job applies the exact rules on fresh state.
func (s *Service) mayNeedMaintenance(app App, latest SecretVersion, now time.Time) bool {
	if revoking(latest) {
		return true
	}
	superseded := !latest.Created.IsZero() && now.Sub(latest.Created) >= s.opt.RetireAfter
	for _, p := range app.Passwords {
		if strings.EqualFold(p.KeyID, latest.KeyID()) {
			continue
		}
		if !p.End.After(now) || now.Sub(p.Start) >= s.opt.OrphanAfter || superseded && p.Start.Before(latest.Created) {
			return true
		}
	}
	return false
}

// fingerprint digests what the scheduler saw of a client, and when, for the maintenance job's
// MessageId: a timer invocation the host retries sends the same jobs again, which duplicate
// detection drops, while the next scheduled run, which may find a password newly past its grace
// period in the same state, sends new ones.
func fingerprint(app App, latest SecretVersion, now time.Time) string {
	keys := keyIDs(app.Passwords)
	slices.Sort(keys)
	return shortHash(latest.ID+"|"+latest.KeyID()+"|"+strings.Join(keys, ",")) + "-" + now.UTC().Format("20060102T150405")
}

// announceDeadLetters publishes "failed" for every command dead-lettered within the lookback.
// A command whose final delivery published its own "failed" gets the same MessageId
// (<requestId>:failed) again, which the events topic's duplicate detection drops, so each is
// announced once however many scheduler runs see it.
func (s *Service) announceDeadLetters(ctx context.Context, rep *ScheduleReport) error {
	if s.opt.DeadLetters == nil {
		return nil
	}
	since := s.opt.Now().Add(-s.opt.DeadLetterLookback)
	var errs []error
	err := s.opt.DeadLetters.PeekDeadLetters(ctx, func(dl DeadLetter) error {
		if dl.EnqueuedTime.Before(since) {
			return nil
		}
		var body struct{ RequestID, ClientName string }
		_ = json.Unmarshal(dl.Body, &body) // a body that does not parse still gets its event
		d := Delivery{MessageID: dl.MessageID, SessionID: dl.SessionID}
		// The commands whose events carry the body's requestId; the others use the MessageId.
		fromBody := ""
		switch dl.Subject {
		case "", CommandRegister, CommandDeregister, CommandVerifyAccess:
			fromBody = body.RequestID
		}
		requestID := s.requestIDFor(fromBody, d)
		client := dl.SessionID
		if client == "" && clientNameRE.MatchString(body.ClientName) {
			client = body.ClientName
		}
		ev := Event{Type: EventFailed, RequestID: requestID, ClientName: client, CommandID: dl.MessageID, Reasons: []Reason{{
			Code: ReasonDeadLettered,
			Message: clip(fmt.Sprintf("Service Bus dead-lettered the %s command (%s: %s); see 'appreg dlq show', fix the cause, then 'appreg dlq resubmit'",
				orDefault(dl.Subject, CommandRegister), orDefault(dl.Reason, "no reason"), dl.Description), maxReasonText),
		}}}
		if _, err := s.publish(ctx, ev); err != nil {
			rep.Failed++
			errs = append(errs, err)
			return nil
		}
		rep.DeadLettered++
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// isDue applies the rotation window: min(RotateBefore, lifetime/3) before expiry. The third keeps
// a short-lived secret from being due the moment it is made.
func (s *Service) isDue(v SecretVersion, now time.Time) bool {
	if v.Expires.IsZero() {
		return false
	}
	start := v.NotBefore
	if start.IsZero() {
		start = v.Created
	}
	window := s.opt.RotateBefore
	if lifetime := v.Expires.Sub(start); lifetime > 0 && lifetime/3 < window {
		window = lifetime / 3
	}
	return v.Expires.Sub(now) <= window
}
