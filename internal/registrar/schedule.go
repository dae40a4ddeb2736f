package registrar

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// ScheduleReport summarises one ScheduleRotations run.
type ScheduleReport struct {
	Apps     int `json:"apps"`     // managed applications examined
	Secrets  int `json:"secrets"`  // managed Key Vault secrets found
	Due      int `json:"due"`      // secrets due for rotation
	Enqueued int `json:"enqueued"` // rotation jobs sent
	Retired  int `json:"retired"`  // passwords removed (superseded, expired, orphaned)
	Failed   int `json:"failed"`   // apps whose examination failed
}

// ScheduleRotations finds managed secrets due for rotation and enqueues one job each, and removes
// passwords the retirement policy says may go, including orphans left by a crash. It only
// schedules rotations: each one runs as its own job with its own retries and dead-letter record.
// It returns an error when any app could not be examined; the rest are still done.
func (s *Service) ScheduleRotations(ctx context.Context) (ScheduleReport, error) {
	var rep ScheduleReport
	secrets := map[string]SecretVersion{}
	err := s.store.ListManaged(ctx, func(v SecretVersion) error {
		if c := v.Tags[KVTagClientName]; c != "" {
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

	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, s.opt.ScanConcurrency)
		seen = map[string]bool{}
	)
	for _, app := range apps {
		name := app.ClientName()
		if name == "" || !app.Managed() || strings.EqualFold(app.AppID, s.opt.SelfAppID) {
			continue
		}
		seen[name] = true
		rep.Apps++
		secret, hasSecret := secrets[name]
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return rep, ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			due, enq, retired, err := s.examine(ctx, app, name, secret, hasSecret)
			mu.Lock()
			defer mu.Unlock()
			rep.Retired += retired
			if due {
				rep.Due++
			}
			if enq {
				rep.Enqueued++
			}
			if err != nil {
				rep.Failed++
				errs = append(errs, err)
				s.log.Error("examining client failed", slog.String("clientName", name), slog.String("appId", app.AppID), slog.Any("error", err))
			}
		}()
	}
	wg.Wait()
	for name, v := range secrets {
		if !seen[name] {
			s.log.Warn("managed secret has no managed application; leaving it", slog.String("clientName", name), slog.String("secretId", v.ID))
		}
	}
	s.log.Info("rotation schedule run finished", slog.Int("apps", rep.Apps), slog.Int("secrets", rep.Secrets),
		slog.Int("due", rep.Due), slog.Int("enqueued", rep.Enqueued), slog.Int("retired", rep.Retired), slog.Int("failed", rep.Failed))
	return rep, errors.Join(errs...)
}

// examine decides one app's fate: enqueue a rotation if its secret is due (or its latest keyId no
// longer authenticates), then retire what the policy allows.
func (s *Service) examine(ctx context.Context, app App, name string, secret SecretVersion, hasSecret bool) (due, enqueued bool, retired int, err error) {
	log := s.log.With(slog.String("clientName", name), slog.String("appId", app.AppID))
	unlock, err := s.gate.lock(ctx, name)
	if err != nil {
		return false, false, 0, err
	}
	defer unlock()

	now := s.opt.Now()
	if !hasSecret {
		// Never sweep on the word of a listing alone: a secret whose tags someone edited would be
		// missing from it, and its live password would look like an orphan.
		latest, err := s.store.Latest(ctx, s.SecretName(name))
		switch {
		case err == nil:
			secret, hasSecret = latest, true
		case !IsNotFound(err):
			return false, false, 0, err
		}
	}
	if hasSecret && !strings.EqualFold(secret.Tags[KVTagAppID], app.AppID) {
		// The app was re-created; its next registration will write a fresh secret.
		log.Warn("latest secret belongs to an earlier application with this name", slog.String("secretAppId", secret.Tags[KVTagAppID]))
		hasSecret = false
		secret = SecretVersion{}
	}
	if hasSecret {
		p, live := app.Password(secret.KeyID())
		switch {
		case !live || !p.Live(now):
			log.Warn("latest secret's password does not authenticate; rotating", slog.String("keyId", secret.KeyID()))
			due = true
		case s.isDue(secret, now):
			due = true
		}
		if due {
			job := RotationJob{ClientName: name, AppID: app.AppID, KeyID: secret.KeyID(), Reason: ReasonNearExpiry}
			if err := s.pub.EnqueueRotation(ctx, job); err != nil {
				return due, false, 0, err
			}
			enqueued = true
			log.Info("rotation enqueued", slog.String("keyId", secret.KeyID()), slog.Time("expires", secret.Expires), slog.String("messageId", job.MessageID()))
		}
	} else {
		log.Warn("managed application has no secret in Key Vault; sweeping orphans only")
	}
	// A revoking rotation whose job died before it removed every other password is finished
	// here: its version says so.
	retired, err = s.retire(ctx, app, secret, revoking(secret), log)
	return due, enqueued, retired, err
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
