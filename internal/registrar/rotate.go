package registrar

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Rotate handles one rotation job: give the client a new secret as a new Key Vault version,
// publish "rotated", then retire what the policy says may go. A job that finds the secret already
// rotated republishes the event and stops, so redelivery and duplicate jobs are harmless.
func (s *Service) Rotate(ctx context.Context, body []byte, d Delivery) (Outcome, error) {
	job, reasons := ParseRotationJob(body)
	base := Event{RequestID: d.MessageID, ClientName: job.ClientName}
	if len(reasons) > 0 {
		return s.rejected(ctx, base, reasons)
	}
	if base.RequestID == "" {
		base.RequestID = job.RequestID()
	}
	log := s.log.With(slog.String("requestId", base.RequestID), slog.String("clientName", job.ClientName),
		slog.String("reason", job.Reason), slog.Int("deliveryCount", d.DeliveryCount))
	out, err := s.rotate(ctx, job, base.RequestID, log)
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

	app, err := s.dir.FindApplication(ctx, s.UniqueName(job.ClientName))
	if IsNotFound(err) {
		return Outcome{}, reject(RejectAppNotFound, "clientName", "no application is registered for this client")
	}
	if err != nil {
		return Outcome{}, err
	}
	if err := s.mayManage(app); err != nil {
		return Outcome{}, err
	}
	if job.AppID != "" && !strings.EqualFold(job.AppID, app.AppID) {
		return Outcome{}, reject(RejectAppIDMismatch, "appId", "the client's application has a different appId; it was re-created since the job was made")
	}
	log = log.With(slog.String("appId", app.AppID))

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

	var verified *bool
	if s.alreadyRotated(job, latest) {
		log.Info("already rotated; nothing to add", slog.String("keyId", latest.KeyID()))
	} else {
		is, err := s.issueSecret(ctx, app, job.ClientName, requestID, s.lifetimeDays(latest), latest.KeyID(), log)
		if err != nil {
			return Outcome{}, err
		}
		latest, verified = is.version, is.verified
		app.Passwords = append(app.Passwords, is.password)
	}
	ev := Event{
		Type: EventRotated, RequestID: requestID, ClientName: job.ClientName,
		AppID: app.AppID, AppObjectID: app.ObjectID,
		KeyID: latest.KeyID(), SecretURI: latest.ID, ExpiresOn: latest.Expires, Verified: verified,
	}
	ev, err = s.publish(ctx, ev)
	if err != nil {
		return Outcome{}, err
	}
	if _, err := s.retire(ctx, app, latest, job.RevokeOld, log); err != nil {
		// The new secret is stored and announced; retirement is retried by the next job or the
		// scheduler, so a failure here must not make the job redeliver and rotate again.
		log.Warn("retirement incomplete; the scheduler will finish it", slog.Any("error", err))
	}
	return Outcome{Event: ev}, nil
}

func (s *Service) alreadyRotated(job RotationJob, latest SecretVersion) bool {
	if latest.ID == "" {
		return false
	}
	if job.KeyID != "" {
		return !strings.EqualFold(latest.KeyID(), job.KeyID)
	}
	return !job.RequestedAt.IsZero() && latest.Created.After(job.RequestedAt)
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
		ev := Event{
			Type: EventRetired, RequestID: "retire:" + app.AppID + ":" + r.Password.KeyID,
			ClientName: app.ClientName(), AppID: app.AppID, AppObjectID: app.ObjectID,
			KeyID: r.Password.KeyID, ExpiresOn: r.Password.End,
			Reasons: []Reason{{Code: r.Why, Message: "password " + r.Why}},
		}
		if _, err := s.publish(ctx, ev); err != nil {
			return removed, err
		}
	}
	return removed, nil
}
