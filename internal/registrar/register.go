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

// Outcome is what handling one message produced.
type Outcome struct {
	Event  Event // the event published
	Reused bool  // registration found a live secret and added no credential
}

// rejection is a refusal that retrying cannot change; the message is completed with a
// "rejected" event instead of being redelivered.
type rejection struct{ reasons []Reason }

func (r *rejection) Error() string {
	msgs := make([]string, len(r.reasons))
	for i, x := range r.reasons {
		msgs[i] = x.Code + ": " + x.Message
	}
	return "rejected: " + strings.Join(msgs, "; ")
}

func reject(code, field, msg string) error {
	return &rejection{reasons: []Reason{{Code: code, Field: field, Message: msg}}}
}

// Register handles one registration request: validate, upsert the app, upsert its service
// principal, ensure exactly one live secret in Key Vault, publish "registered". Every step
// converges, so a redelivered or repeated request changes nothing and adds no credential.
//
// A nil error means the message is finished (registered or rejected) and may be completed. An
// error means "redeliver me"; on the attempt that reaches MaxDeliveryCount a "failed" event is
// published first, so the dead-lettered request is not lost silently.
func (s *Service) Register(ctx context.Context, body []byte, d Delivery) (Outcome, error) {
	req, reasons := ParseRegistration(body, s.Limits())
	base := Event{RequestID: req.RequestID, ClientName: req.ClientName}
	if base.RequestID == "" || !requestIDRE.MatchString(base.RequestID) {
		base.RequestID = d.MessageID
	}
	if len(reasons) > 0 {
		return s.rejected(ctx, base, reasons)
	}
	log := s.log.With(slog.String("requestId", req.RequestID), slog.String("clientName", req.ClientName), slog.Int("deliveryCount", d.DeliveryCount))
	log.Info("registration started", slog.String("requestedBy", req.RequestedBy))
	out, err := s.register(ctx, req, log)
	if err != nil {
		return s.failed(ctx, base, d, err, log)
	}
	return out, nil
}

func (s *Service) register(ctx context.Context, req Registration, log *slog.Logger) (Outcome, error) {
	unlock, err := s.gate.lock(ctx, req.ClientName)
	if err != nil {
		return Outcome{}, err
	}
	defer unlock()

	uniqueName := s.UniqueName(req.ClientName)
	existing, err := s.dir.FindApplication(ctx, uniqueName)
	switch {
	case err == nil:
		if err := s.mayManage(existing); err != nil {
			return Outcome{}, err
		}
	case IsNotFound(err):
	default:
		return Outcome{}, err
	}
	// Every check that can refuse the request runs before the first write, so a refusal leaves
	// nothing behind: no app without a secret that every later scan would warn about.
	latest, err := s.checkSecretName(ctx, req.ClientName)
	if err != nil {
		return Outcome{}, err
	}
	app, err := s.dir.UpsertApplication(ctx, AppSpec{
		UniqueName:     uniqueName,
		DisplayName:    req.DisplayName,
		SignInAudience: req.SignInAudience,
		Notes:          req.Notes,
		RedirectURIs:   req.RedirectURIs,
		Tags:           managedTags(existing.Tags, req.ClientName),
	})
	if err != nil {
		return Outcome{}, err
	}
	if err := s.mayManage(app); err != nil {
		return Outcome{}, err
	}
	log = log.With(slog.String("appId", app.AppID), slog.String("appObjectId", app.ObjectID))
	log.Info("application upserted", slog.Bool("created", existing.ObjectID == ""))

	var sp ServicePrincipal
	err = s.retry(ctx, s.opt.ReplicationTimeout, 0, isReplicating, func() (err error) {
		sp, err = s.dir.UpsertServicePrincipal(ctx, app.AppID)
		return err
	})
	if err != nil {
		return Outcome{}, err
	}

	is, reused, err := s.ensureSecret(ctx, app, latest, req.ClientName, req.RequestID, req.LifetimeDays, log)
	if err != nil {
		return Outcome{}, err
	}
	ev := Event{
		Type: EventRegistered, RequestID: req.RequestID, ClientName: req.ClientName,
		AppID: app.AppID, AppObjectID: app.ObjectID, ServicePrincipalID: sp.ObjectID,
		KeyID: is.version.KeyID(), SecretURI: is.version.ID, ExpiresOn: is.version.Expires, Verified: is.verified,
	}
	ev, err = s.publish(ctx, ev)
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Event: ev, Reused: reused}, nil
}

// mayManage refuses apps appreg did not create, and its own identity.
func (s *Service) mayManage(app App) error {
	if s.opt.SelfAppID != "" && strings.EqualFold(app.AppID, s.opt.SelfAppID) {
		return reject(RejectSelf, "clientName", "the application is appreg's own identity")
	}
	if !app.Managed() {
		return reject(RejectAppNotManaged, "clientName", fmt.Sprintf("application %q exists but was not created by appreg (no %s tag); appreg never takes over other applications", app.UniqueName, TagManaged))
	}
	return nil
}

// managedTags keeps tags other people set and makes sure ours are present.
func managedTags(existing []string, clientName string) []string {
	tags := []string{TagManaged, TagClientPrefix + clientName}
	for _, t := range existing {
		if !strings.HasPrefix(t, "appreg:") && !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	return tags
}

// checkSecretName reads the client's Key Vault secret and refuses a name appreg cannot write: one
// another writer owns, or one that is soft-deleted. It returns the latest version, or a zero
// SecretVersion when there is none.
func (s *Service) checkSecretName(ctx context.Context, clientName string) (SecretVersion, error) {
	name := s.SecretName(clientName)
	latest, err := s.store.Latest(ctx, name)
	switch {
	case err == nil:
		if !latest.Managed() {
			return SecretVersion{}, reject(RejectSecretConflict, "clientName", fmt.Sprintf("Key Vault secret %q exists and was not written by appreg; choose another clientName or remove that secret", name))
		}
		return latest, nil
	case !IsNotFound(err):
		return SecretVersion{}, err
	}
	deleted, err := s.store.Deleted(ctx, name)
	if err != nil {
		return SecretVersion{}, err
	}
	if deleted {
		return SecretVersion{}, reject(RejectSecretConflict, "clientName", fmt.Sprintf("Key Vault secret %q is soft-deleted; recover it (az keyvault secret recover) or purge it (az keyvault secret purge), then send the request again", name))
	}
	return SecretVersion{}, nil
}

// ensureSecret reuses the latest Key Vault version when its keyId is still a live password of
// the app; otherwise it issues a new one. This check is what makes addPassword, the one step
// that is not naturally idempotent, safe to reach more than once.
func (s *Service) ensureSecret(ctx context.Context, app App, latest SecretVersion, clientName, requestID string, lifetimeDays int, log *slog.Logger) (issued, bool, error) {
	if latest.ID != "" && strings.EqualFold(latest.Tags[KVTagAppID], app.AppID) {
		if p, ok := app.Password(latest.KeyID()); ok && p.Live(s.opt.Now()) {
			log.Info("live secret reused; no credential added", slog.String("keyId", p.KeyID), slog.String("secretId", latest.ID))
			return issued{version: latest}, true, nil
		}
	}
	is, err := s.issueSecret(ctx, app, issueSpec{clientName: clientName, requestID: requestID, lifetimeDays: lifetimeDays}, log)
	return is, false, err
}

// issued is a secret issueSecret stored.
type issued struct {
	version  SecretVersion
	password Password
	verified *bool // nil: not checked
}

// issueSecret adds a password and stores its text as a new Key Vault version at once. If the
// store fails after retries, it removes the password again so no credential exists that nobody
// holds; if even that fails, the orphan sweep removes it later.
// issueSpec says what issueSecret writes beside the new password.
type issueSpec struct {
	clientName, requestID string
	lifetimeDays          int
	previousKeyID         string // the keyId the new secret replaces, for rotations
	revokeOld             bool   // the new version records that every other password must go
}

func (s *Service) issueSecret(ctx context.Context, app App, is issueSpec, log *slog.Logger) (issued, error) {
	clientName, requestID, lifetimeDays := is.clientName, is.requestID, is.lifetimeDays
	now := s.opt.Now().UTC().Truncate(time.Second)
	spec := PasswordSpec{
		DisplayName: PasswordDisplayPrefix + " " + requestID,
		Start:       now,
		End:         now.Add(time.Duration(lifetimeDays) * 24 * time.Hour),
	}
	var np NewPassword
	err := s.gate.edit(ctx, app.ObjectID, func() error {
		return s.retry(ctx, s.opt.ReplicationTimeout, 0, isReplicating, func() (err error) {
			np, err = s.dir.AddPassword(ctx, app.ObjectID, spec)
			return err
		})
	})
	if err != nil {
		return issued{}, err
	}
	log.Info("password added", slog.String("keyId", np.KeyID), slog.String("hint", np.Hint), slog.Time("endDateTime", np.End))

	tags := map[string]string{
		KVTagManagedBy:    KVManagedByValue,
		KVTagClientName:   clientName,
		KVTagAppID:        app.AppID,
		KVTagAppObjectID:  app.ObjectID,
		KVTagKeyID:        np.KeyID,
		KVTagTenantID:     s.opt.TenantID,
		KVTagRequestID:    requestID,
		KVTagLifetimeDays: strconv.Itoa(lifetimeDays),
	}
	if is.previousKeyID != "" {
		tags[KVTagPreviousKeyID] = is.previousKeyID
	}
	if is.revokeOld {
		tags[KVTagRevokeOld] = "true"
	}
	name := s.SecretName(clientName)
	var ver SecretVersion
	err = s.retry(ctx, 0, s.opt.StoreAttempts, Retryable, func() (err error) {
		ver, err = s.store.Put(ctx, name, np.Secret, SecretSpec{
			ContentType: "text/plain", NotBefore: np.Start, Expires: np.End, Tags: tags,
		})
		return err
	})
	if err != nil {
		np.Secret = SecretValue{}
		log.Error("storing the secret failed; removing the password", slog.String("keyId", np.KeyID), slog.Any("error", err))
		s.compensate(ctx, app.ObjectID, np.KeyID, log)
		if ErrorCode(err) == CodeConflict {
			return issued{}, &rejection{reasons: []Reason{{
				Code: RejectSecretConflict, Field: "clientName",
				Message: fmt.Sprintf("Key Vault refused secret %q (%v); if it is soft-deleted, recover or purge it and send the request again", name, err),
			}}}
		}
		return issued{}, err
	}
	log.Info("secret stored", slog.String("keyId", np.KeyID), slog.String("secretId", ver.ID), slog.Time("expires", ver.Expires))
	verified := s.verify(ctx, app.AppID, np.Secret, log)
	np.Secret = SecretValue{} // the only copy is now in Key Vault
	return issued{version: ver, password: np.Password, verified: verified}, nil
}

// verify signs in with a new secret until Entra accepts it or VerifyTimeout passes. A secret that
// does not verify in time is still stored and announced, marked unverified: the password exists
// and Key Vault holds it, and retrying the message would only issue another one.
func (s *Service) verify(ctx context.Context, appID string, secret SecretValue, log *slog.Logger) *bool {
	if s.opt.Verifier == nil {
		return nil
	}
	start := s.opt.Now()
	err := s.retry(ctx, s.opt.VerifyTimeout, 0, isReplicating, func() error {
		return s.opt.Verifier.Authenticates(ctx, appID, secret)
	})
	ok := err == nil
	if ok {
		log.Info("new secret signs in", slog.Duration("after", s.opt.Now().Sub(start)))
	} else {
		log.Warn("new secret did not sign in within the verification window; announcing it unverified",
			slog.Duration("after", s.opt.Now().Sub(start)), slog.Any("error", err))
	}
	return &ok
}

// compensate removes a password that never reached Key Vault. It runs even when the caller's
// context is ending, because leaving the credential behind is worse than finishing late.
func (s *Service) compensate(ctx context.Context, appObjectID, keyID string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	err := s.gate.edit(ctx, appObjectID, func() error {
		return s.retry(ctx, 0, s.opt.StoreAttempts, Retryable, func() error {
			return s.dir.RemovePassword(ctx, appObjectID, keyID)
		})
	})
	if err != nil && !IsNotFound(err) {
		log.Error("compensation failed; the orphan sweep will remove the password", slog.String("keyId", keyID), slog.Any("error", err))
		return
	}
	log.Info("password removed after failed store", slog.String("keyId", keyID))
}

// rejected publishes a rejection; the message is then complete.
func (s *Service) rejected(ctx context.Context, base Event, reasons []Reason) (Outcome, error) {
	ev := base
	ev.Type = EventRejected
	ev.Reasons = capReasons(reasons)
	s.log.Warn("request rejected", slog.String("requestId", ev.RequestID), slog.String("clientName", ev.ClientName), slog.Any("reasons", reasons))
	ev, err := s.publish(ctx, ev)
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Event: ev}, nil
}

// failed turns a saga error into the message's fate: rejections complete it, anything else is
// retried, and the last retry also publishes "failed".
func (s *Service) failed(ctx context.Context, base Event, d Delivery, err error, log *slog.Logger) (Outcome, error) {
	var rej *rejection
	if errors.As(err, &rej) {
		return s.rejected(ctx, base, rej.reasons)
	}
	if ErrorCode(err) == CodeInvalid {
		return s.rejected(ctx, base, []Reason{{Code: RejectDirectoryRefused, Message: err.Error()}})
	}
	// Logged once, here: at Warn while another delivery will try again, at Error when none will.
	if !s.finalAttempt(d) {
		log.Warn("attempt failed; the message will be redelivered", slog.Any("error", err),
			slog.Int("attempt", d.DeliveryCount), slog.Int("maxAttempts", s.opt.MaxDeliveryCount))
		return Outcome{}, err
	}
	log.Error("final attempt failed; the message will be dead-lettered", slog.Any("error", err),
		slog.Int("attempt", d.DeliveryCount), slog.Int("maxAttempts", s.opt.MaxDeliveryCount))
	ev := base
	ev.Type = EventFailed
	ev.Reasons = []Reason{{Code: string(ErrorCode(err)), Message: clip(err.Error(), maxReasonText)}}
	var rev *revocationError
	if errors.As(err, &rev) {
		// The new secret exists and is announced here, with what a person must still remove.
		ev.AppID, ev.AppObjectID, ev.KeyID, ev.SecretURI, ev.ExpiresOn = rev.event.AppID, rev.event.AppObjectID, rev.event.KeyID, rev.event.SecretURI, rev.event.ExpiresOn
		ev.StillValidKeyIDs = rev.stillValid
		ev.Reasons = append([]Reason{{Code: ReasonRevocationIncomplete, Message: fmt.Sprintf(
			"the new secret is stored, but %d old password(s) still sign in and must be removed by hand: az ad app credential delete --id %s --key-id <keyId>",
			len(rev.stillValid), rev.event.AppID)}}, ev.Reasons...)
	}
	if _, perr := s.publish(ctx, ev); perr != nil {
		log.Error("publishing the failed event failed", slog.Any("error", perr))
	}
	return Outcome{}, err
}
