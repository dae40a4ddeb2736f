package registrar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Rotate handles one rotation job: give the client a new secret as a new Key Vault version,
// publish "rotated", then retire what the policy says may go. Every decision is made on Graph
// and Key Vault as they are now, inside the client's session: a job that finds the secret
// already rotated republishes the event and stops, and a scheduled job whose secret is no longer
// due (the scheduler saw a stale listing) does nothing, so redelivery, duplicate jobs and a
// scheduler that raced a registration are all harmless.
func (s *Service) Rotate(ctx context.Context, body []byte, d Delivery) (Outcome, error) {
	job, reasons := ParseRotationJob(body)
	requestID := job.RequestID()
	if d.MessageID != "" {
		requestID = s.requestIDFor("", d)
	}
	base := Event{RequestID: requestID, ClientName: job.ClientName, CommandID: d.MessageID}
	if len(reasons) == 0 {
		reasons = checkSession(d, job.ClientName)
	}
	if len(reasons) > 0 {
		return s.rejected(ctx, base, reasons)
	}
	log := s.log.With(slog.String("requestId", requestID), slog.String("clientName", job.ClientName),
		slog.String("reason", job.Reason), slog.Int("deliveryCount", d.DeliveryCount))
	out, err := s.persist(ctx, d, log, func(ctx context.Context) (Outcome, error) { return s.rotate(ctx, job, requestID, log) })
	if err != nil {
		return s.failed(ctx, base, d, err, log)
	}
	return out, nil
}

func (s *Service) rotate(ctx context.Context, job RotationJob, requestID string, log *slog.Logger) (Outcome, error) {
	unlock, err := s.gate.lock(ctx, job.ClientName)
	if err != nil {
		return Outcome{}, err
	}
	defer unlock()

	name := s.SecretName(job.ClientName)
	latest, err := s.store.Latest(ctx, name)
	switch {
	case err == nil:
		if !latest.Managed() {
			return Outcome{}, reject(RejectSecretConflict, "clientName", "Key Vault secret "+name+" exists and was not written by appreg")
		}
	case IsNotFound(err):
	default:
		return Outcome{}, err
	}
	app, err := s.dir.FindApplication(ctx, s.UniqueName(job.ClientName))
	switch {
	case IsNotFound(err) && latest.Managed():
		// Key Vault holds the client's secret, so its app exists; the replica serving this read
		// has not caught up with it yet.
		return Outcome{}, &Error{Code: CodeReplicating, Op: "graph.getApplication", Message: "the application is not visible yet", Err: err}
	case IsNotFound(err):
		return Outcome{}, reject(RejectAppNotFound, "clientName", "no application is registered for this client")
	case err != nil:
		return Outcome{}, err
	}
	if err := s.mayManage(app); err != nil {
		return Outcome{}, err
	}
	if job.AppID != "" && !strings.EqualFold(job.AppID, app.AppID) {
		return Outcome{}, reject(RejectAppIDMismatch, "appId", "the client's application has a different appId; it was re-created since the job was made")
	}
	log = log.With(slog.String("appId", app.AppID))
	if !alreadyRotated(job, requestID, latest) {
		// Judging whether the secret is due or dead needs its password as Graph has it now.
		if app, err = s.awaitLatestPassword(ctx, app, latest); err != nil {
			return Outcome{}, err
		}
	}

	if job.Reason == ReasonNearExpiry && !alreadyRotated(job, requestID, latest) && !s.needsRotation(app, latest, s.opt.Now()) {
		// D5: the scheduler judged from a listing; judged again now, the secret is neither due
		// nor dead (for example a registration was still writing it), so there is nothing to do.
		log.Info("scheduled rotation not needed on a fresh reading; nothing done", slog.String("keyId", latest.KeyID()))
		return Outcome{}, nil
	}

	var verified *bool
	var notes []Reason
	if alreadyRotated(job, requestID, latest) {
		log.Info("already rotated; nothing to add", slog.String("keyId", latest.KeyID()))
	} else {
		is, err := s.issueSecret(ctx, app, issueSpec{
			clientName: job.ClientName, requestID: requestID, lifetimeDays: s.lifetimeDays(latest),
			previousKeyID: latest.KeyID(), revokeOld: job.RevokeOld,
		}, log)
		if err != nil {
			return Outcome{}, err
		}
		latest, verified, notes = is.version, is.verified, is.notes
		app.Passwords = append(app.Passwords, is.password)
	}
	ev := Event{
		Type: EventRotated, RequestID: requestID, ClientName: job.ClientName,
		AppID: app.AppID, AppObjectID: app.ObjectID,
		KeyID: latest.KeyID(), SecretURI: latest.ID, ExpiresOn: latest.Expires, Verified: verified,
		Reasons: notes,
	}
	if job.RevokeOld || revoking(latest) {
		// A revoking rotation is not done until every other password is gone: "rotated" is
		// what `appreg rotate --compromised --wait` returns on, so it must not come while the
		// leaked password still signs in. Failures are retried like any other, and the version's
		// revokeOld tag lets the scheduler finish the job if this one dies.
		revoked, err := s.revokeOthers(ctx, app.UniqueName, latest, log)
		if err != nil {
			return Outcome{}, &revocationError{event: ev, stillValid: stillValid(err), err: err}
		}
		ev.RevokedKeyIDs = revoked
		ev, err = s.publish(ctx, ev)
		if err != nil {
			return Outcome{}, err
		}
		return Outcome{Event: ev}, nil
	}
	ev, err = s.publish(ctx, ev)
	if err != nil {
		return Outcome{}, err
	}
	if _, err := s.retire(ctx, app, latest, false, log); err != nil {
		// The new secret is stored and announced; retirement is retried by the next job or the
		// scheduler, so a failure here must not make the job redeliver and rotate again.
		log.Warn("retirement incomplete; the scheduler will finish it", slog.Any("error", err))
	}
	return Outcome{Event: ev}, nil
}

// revoking reports whether v was written by a revoking rotation.
func revoking(v SecretVersion) bool { return v.Tags[KVTagRevokeOld] == "true" }

// revocationError is a revoking rotation that stored its new secret but could not remove every
// other password. It carries the rotation's event, so that the final attempt's "failed" event
// names both the new secret and the passwords that still sign in.
type revocationError struct {
	event      Event
	stillValid []string
	err        error
}

func (e *revocationError) Error() string {
	return fmt.Sprintf("revoking the old passwords: %d still sign in (%s): %v", len(e.stillValid), strings.Join(e.stillValid, ", "), e.err)
}

func (e *revocationError) Unwrap() error { return e.err }

// stillValidError is what revokeOthers returns: why it stopped, and what is left.
type stillValidError struct {
	keyIDs []string
	err    error
}

func (e *stillValidError) Error() string { return e.err.Error() }
func (e *stillValidError) Unwrap() error { return e.err }

func stillValid(err error) []string {
	var sv *stillValidError
	if errors.As(err, &sv) {
		return sv.keyIDs
	}
	return nil
}

// revokeOthers removes every password of the app but the one latest holds, reading the app
// afresh each round so a password added meanwhile is not missed, and publishes "retired" for
// each. It returns the keyIds it removed.
func (s *Service) revokeOthers(ctx context.Context, uniqueName string, latest SecretVersion, log *slog.Logger) ([]string, error) {
	keep := latest.KeyID()
	if keep == "" {
		return nil, &Error{Code: CodeInternal, Op: "registrar.revoke", Message: "the latest version names no keyId; refusing to remove every password"}
	}
	var removed []string
	const rounds = 3
	for round := 1; ; round++ {
		app, err := s.dir.FindApplication(ctx, uniqueName)
		if err != nil {
			return removed, err
		}
		var others []Password
		for _, p := range app.Passwords {
			// A password Graph acknowledged removing is gone, even when the replica serving
			// this read still lists it: removals replicate like everything else, and removing
			// it again would fail and look like a password that still works.
			if !strings.EqualFold(p.KeyID, keep) && !slices.ContainsFunc(removed, func(k string) bool { return strings.EqualFold(k, p.KeyID) }) {
				others = append(others, p)
			}
		}
		if len(others) == 0 {
			return removed, nil
		}
		if round > rounds {
			return removed, &stillValidError{keyIDs: keyIDs(others), err: &Error{Code: CodeUnavailable, Op: "registrar.revoke",
				Message: fmt.Sprintf("passwords still listed after %d rounds of removal", rounds)}}
		}
		for i, p := range others {
			err := s.gate.edit(ctx, app.ObjectID, func() error {
				return s.retry(ctx, 0, s.opt.StoreAttempts, Retryable, func() error {
					return s.dir.RemovePassword(ctx, app.ObjectID, p.KeyID)
				})
			})
			if err != nil && !IsNotFound(err) {
				return removed, &stillValidError{keyIDs: keyIDs(others[i:]), err: err}
			}
			removed = append(removed, p.KeyID)
			log.Info("password revoked", slog.String("keyId", p.KeyID))
			if _, err := s.publish(ctx, retiredEvent(app, p, "revoked")); err != nil {
				return removed, err
			}
		}
	}
}

func keyIDs(ps []Password) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.KeyID
	}
	return out
}

func retiredEvent(app App, p Password, why string) Event {
	return Event{
		Type: EventRetired, RequestID: "retire:" + app.AppID + ":" + p.KeyID,
		ClientName: app.ClientName(), AppID: app.AppID, AppObjectID: app.ObjectID,
		KeyID: p.KeyID, ExpiresOn: p.End,
		Reasons: []Reason{{Code: why, Message: "password " + why}},
	}
}

// alreadyRotated reports whether the job's work is done: the version it replaces is no longer the
// latest, or the latest was written by this very job (its requestId tag) or after it was asked
// for. Key Vault's created times are whole seconds, so a version this job wrote in the second it
// was requested is recognised by its tag, not its time.
// needsRotation reports whether a client's latest secret should be replaced: it is due, or its
// password no longer authenticates.
func (s *Service) needsRotation(app App, latest SecretVersion, now time.Time) bool {
	if latest.ID == "" || !strings.EqualFold(latest.Tags[KVTagAppID], app.AppID) {
		return true
	}
	p, ok := app.Password(latest.KeyID())
	if !ok && now.Sub(latest.Created) < s.opt.ReplicationTimeout {
		// A version this young names a password the listing's replica has not caught up with,
		// not one that is gone. Judging it dead would send a job that finds nothing to do and
		// whose MessageId then keeps duplicate detection from taking the real one when it is due.
		return s.isDue(latest, now)
	}
	return !ok || !p.Live(now) || s.isDue(latest, now)
}

func alreadyRotated(job RotationJob, requestID string, latest SecretVersion) bool {
	if latest.ID == "" {
		return false
	}
	if job.KeyID != "" {
		return !strings.EqualFold(latest.KeyID(), job.KeyID)
	}
	return latest.Tags[KVTagRequestID] == requestID ||
		!job.RequestedAt.IsZero() && latest.Created.After(job.RequestedAt)
}

// lifetimeDays keeps the lifetime the client was registered with, within today's policy.
func (s *Service) lifetimeDays(v SecretVersion) int {
	n, err := strconv.Atoi(v.Tags[KVTagLifetimeDays])
	if err != nil || n < 1 {
		return s.opt.DefaultLifetimeDays
	}
	return min(n, s.opt.MaxLifetimeDays)
}

// Retirement is a password the policy removes, and why.
type Retirement struct {
	Password Password
	Why      string // "superseded", "expired", "orphaned" or "revoked"
}

// planRetirement decides which of an app's passwords to remove. It never removes the keyId of
// the latest Key Vault version: that is the secret consumers are reading now.
//   - revoke: every other password goes at once (revokeOld, compromised).
//   - expired passwords go: they authenticate nobody.
//   - a password held by an older version goes once a newer version has existed for retireAfter,
//     which is how long consumers have to pick up the new version.
//   - an appreg password no version holds (a crash between addPassword and the Key Vault write)
//     goes after orphanAfter. Passwords a person added are left alone and only logged.
func planRetirement(app App, latestKeyID string, versions []SecretVersion, now time.Time, retireAfter, orphanAfter time.Duration, revoke bool) []Retirement {
	versions = slices.Clone(versions)
	slices.SortFunc(versions, func(a, b SecretVersion) int { return a.Created.Compare(b.Created) })
	superseded := map[string]time.Time{} // keyId → when a version with another keyId first followed it
	referenced := map[string]bool{}
	for i, v := range versions {
		k := strings.ToLower(v.KeyID())
		if k == "" {
			continue
		}
		referenced[k] = true
		for _, w := range versions[i+1:] {
			if strings.ToLower(w.KeyID()) != k {
				if t, ok := superseded[k]; !ok || w.Created.Before(t) {
					superseded[k] = w.Created
				}
				break
			}
		}
	}
	var out []Retirement
	for _, p := range app.Passwords {
		k := strings.ToLower(p.KeyID)
		switch {
		case latestKeyID != "" && strings.EqualFold(p.KeyID, latestKeyID):
		case revoke:
			out = append(out, Retirement{p, "revoked"})
		case !p.End.After(now):
			out = append(out, Retirement{p, "expired"})
		case referenced[k]:
			if t, ok := superseded[k]; ok && now.Sub(t) >= retireAfter {
				out = append(out, Retirement{p, "superseded"})
			}
		case strings.HasPrefix(p.DisplayName, PasswordDisplayPrefix) && now.Sub(p.Start) >= orphanAfter:
			out = append(out, Retirement{p, "orphaned"})
		}
	}
	return out
}

// retire removes the passwords planRetirement picks, publishing "retired" for each. The caller
// holds the app's lock.
func (s *Service) retire(ctx context.Context, app App, latest SecretVersion, revoke bool, log *slog.Logger) (int, error) {
	latestKeyID := latest.KeyID()
	needVersions := false
	for _, p := range app.Passwords {
		if !strings.EqualFold(p.KeyID, latestKeyID) {
			needVersions = true
		}
	}
	if !needVersions {
		return 0, nil
	}
	var versions []SecretVersion
	if latest.ID != "" {
		var err error
		if versions, err = s.store.Versions(ctx, latest.Name); err != nil {
			return 0, err
		}
	}
	plan := planRetirement(app, latestKeyID, versions, s.opt.Now(), s.opt.RetireAfter, s.opt.OrphanAfter, revoke)
	for _, p := range app.Passwords {
		planned := slices.ContainsFunc(plan, func(r Retirement) bool { return r.Password.KeyID == p.KeyID })
		if !planned && !strings.EqualFold(p.KeyID, latestKeyID) && !strings.HasPrefix(p.DisplayName, PasswordDisplayPrefix) {
			log.Warn("password not created by appreg left in place", slog.String("keyId", p.KeyID), slog.String("hint", p.Hint))
		}
	}
	removed := 0
	for _, r := range plan {
		err := s.gate.edit(ctx, app.ObjectID, func() error {
			return s.retry(ctx, 0, s.opt.StoreAttempts, Retryable, func() error {
				return s.dir.RemovePassword(ctx, app.ObjectID, r.Password.KeyID)
			})
		})
		if err != nil && !IsNotFound(err) {
			return removed, err
		}
		removed++
		log.Info("password retired", slog.String("keyId", r.Password.KeyID), slog.String("why", r.Why))
		if _, err := s.publish(ctx, retiredEvent(app, r.Password, r.Why)); err != nil {
			return removed, err
		}
	}
	return removed, nil
}
