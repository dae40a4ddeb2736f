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

// Register handles one registration request: validate, make the app and its service principal
// match the request, ensure exactly one live secret in Key Vault, publish "registered". Every
// step converges and writes only what differs, so a redelivered or repeated request reads and
// changes nothing.
func (s *Service) Register(ctx context.Context, body []byte, d Delivery) (Outcome, error) {
	req, reasons := ParseRegistration(body, s.Limits())
	base := Event{RequestID: s.requestIDFor(req.RequestID, d), ClientName: req.ClientName, CommandID: d.MessageID}
	if len(reasons) == 0 {
		reasons = checkSession(d, req.ClientName)
	}
	if len(reasons) > 0 {
		return s.rejected(ctx, base, reasons)
	}
	log := s.log.With(slog.String("requestId", req.RequestID), slog.String("clientName", req.ClientName), slog.Int("deliveryCount", d.DeliveryCount))
	log.Info("registration started", slog.String("requestedBy", req.RequestedBy))
	tries := 0
	out, err := s.persist(ctx, d, log, func(ctx context.Context) (Outcome, error) {
		tries++
		return s.register(ctx, req, d.DeliveryCount <= 1 && tries == 1, log)
	})
	if err != nil {
		return s.failed(ctx, base, d, err, log)
	}
	return out, nil
}

// firstTry says no earlier try or delivery of this message can have created the app.
func (s *Service) register(ctx context.Context, req Registration, firstTry bool, log *slog.Logger) (Outcome, error) {
	unlock, err := s.gate.lock(ctx, req.ClientName)
	if err != nil {
		return Outcome{}, err
	}
	defer unlock()

	uniqueName := s.UniqueName(req.ClientName)
	// Every check that can refuse the request runs before the first write, so a refusal leaves
	// nothing behind: no app without a secret that every later scan would warn about.
	latest, err := s.checkSecretName(ctx, req.ClientName)
	if err != nil {
		return Outcome{}, err
	}
	// On a message's first try, Key Vault holding no secret for the client says it is new: the
	// app is created without reading first (3 Graph requests, not 4), and a create refused
	// because the uniqueName is taken falls back to reading the app (a message before this one
	// died before storing its secret, or someone else's app has the name; mayManage judges it
	// there, still before any write). A retry reads first: the try before it may have created
	// the app, and a create that fails still spends one of Graph's writes.
	var existing App
	if latest.ID != "" || !firstTry {
		existing, err = s.dir.FindApplication(ctx, uniqueName)
		switch {
		case err == nil:
			if err := s.mayManage(existing); err != nil {
				return Outcome{}, err
			}
		case IsNotFound(err):
		default:
			return Outcome{}, err
		}
	}
	spec := AppSpec{
		UniqueName:     uniqueName,
		DisplayName:    req.DisplayName,
		SignInAudience: req.SignInAudience,
		Notes:          req.Notes,
		RedirectURIs:   req.RedirectURIs,
		Tags:           managedTags(existing.Tags, req.ClientName),
	}
	app, created, err := s.ensureApplication(ctx, existing, spec)
	if err != nil {
		return Outcome{}, err
	}
	if err := s.mayManage(app); err != nil {
		return Outcome{}, err
	}
	log = log.With(slog.String("appId", app.AppID), slog.String("appObjectId", app.ObjectID))

	sp, spCreated, err := s.ensureServicePrincipal(ctx, app, created)
	if err != nil {
		return Outcome{}, err
	}
	access, err := s.ensureFHIRAccess(ctx, sp, spCreated, req.FHIRAccess, log)
	if err != nil {
		return Outcome{}, err
	}

	is, reused, err := s.ensureSecret(ctx, app, latest, req.ClientName, req.RequestID, req.LifetimeDays, log)
	if err != nil {
		return Outcome{}, err
	}
	// Sent before the event: if sending fails, the redelivery sends both (the job's MessageId
	// makes a second copy harmless), and no "registered" goes out without its proof on the way.
	if err := s.scheduleAccessCheck(ctx, req.ClientName, app.AppID, req.RequestID, access); err != nil {
		return Outcome{}, err
	}
	ev := Event{
		Type: EventRegistered, RequestID: req.RequestID, ClientName: req.ClientName,
		AppID: app.AppID, AppObjectID: app.ObjectID, ServicePrincipalID: sp.ObjectID,
		KeyID: is.version.KeyID(), SecretURI: is.version.ID, ExpiresOn: is.version.Expires, Verified: is.verified,
		FHIRAccess: access, Reasons: is.notes,
	}
	ev, err = s.publish(ctx, ev)
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Event: ev, Reused: reused}, nil
}

// ensureApplication makes the app match spec, writing only when it does not: Graph allows about
// 3,000 application writes per 150 s per app and tenant, and a redelivery should spend none. It
// reports whether the app was created by this call.
//
// An app the read did not find is created, never upserted: the replica that served the read may
// simply not show an app that exists, and an upsert would then rewrite someone else's app (and
// tag it as ours) before mayManage could look at it. When the uniqueName turns out to be taken,
// the app is read until a replica shows it and judged like one found at once; one that never
// shows within ReplicationTimeout is soft-deleted, keeping its name for 30 days.
func (s *Service) ensureApplication(ctx context.Context, existing App, spec AppSpec) (App, bool, error) {
	if existing.ObjectID == "" {
		app, err := s.dir.CreateApplication(ctx, spec)
		if err == nil || ReasonOf(err) != RejectClientNameReserved {
			return app, err == nil, err
		}
		taken, since := err, s.opt.Now()
		err = s.retry(ctx, s.opt.ReplicationTimeout, 0, isReplicating, func() (err error) {
			existing, err = s.dir.FindApplication(ctx, spec.UniqueName)
			if IsNotFound(err) {
				err = &Error{Code: CodeReplicating, Op: "graph.getApplication", Message: "the uniqueName is taken by an application that is not visible yet", Err: err}
			}
			return err
		})
		switch {
		case isReplicating(err) && s.windowEndsBefore(ctx, since.Add(s.opt.ReplicationTimeout)):
			// The delivery's retry window ended first: not proof of anything, so the request
			// is retried rather than rejected.
			return App{}, false, err
		case isReplicating(err):
			return App{}, false, &Error{Code: CodeInvalid, Reason: RejectClientNameReserved, Op: "graph.createApplication", Err: taken,
				Message: fmt.Sprintf("uniqueName %s is taken, and no application with it became visible within %v: a deleted one holds it", spec.UniqueName, s.opt.ReplicationTimeout)}
		case err != nil:
			return App{}, false, err
		}
		if err := s.mayManage(existing); err != nil {
			return App{}, false, err
		}
		spec.Tags = withForeignTags(spec.Tags, existing.Tags)
	}
	if existing.matches(spec) {
		return existing, false, nil
	}
	app, created, err := s.dir.UpsertApplication(ctx, spec)
	switch {
	case err != nil:
		return App{}, false, err
	case created:
		// Deleted and purged between the read and the write: the upsert made a new one.
		return app, true, nil
	}
	// Graph answers an update with 204 and no body; what is there now is what was sent.
	return existing.with(spec), false, nil
}

// windowEndsBefore reports whether the delivery's retry window, if any, ends before t.
func (s *Service) windowEndsBefore(ctx context.Context, t time.Time) bool {
	end, ok := ctx.Value(windowKey{}).(time.Time)
	return ok && end.Before(t)
}

// ensureServicePrincipal makes sure the app has a service principal, reading before writing: an
// existing one needs no write (and Application.ReadWrite.OwnedBy may not let appreg write a
// service principal it did not create). A new app's service principal cannot exist yet. It
// reports whether it created the service principal.
func (s *Service) ensureServicePrincipal(ctx context.Context, app App, newApp bool) (ServicePrincipal, bool, error) {
	if !newApp {
		sp, err := s.dir.FindServicePrincipal(ctx, app.AppID)
		if err == nil || !IsNotFound(err) {
			return sp, false, err
		}
	}
	if newApp && s.nearWriteLimit() {
		// A write sent before the new app has replicated fails and is retried; near the limit
		// that failed write is one another registration needed, so reads go first.
		if err := s.awaitVisible(ctx, app.UniqueName); err != nil && !isReplicating(err) {
			return ServicePrincipal{}, false, err
		}
	}
	var sp ServicePrincipal
	err := s.retry(ctx, s.opt.ReplicationTimeout, 0, isReplicating, func() (err error) {
		sp, err = s.dir.UpsertServicePrincipal(ctx, app.AppID)
		if isReplicating(err) {
			// The next try waits for reads to show the app, not for a write to. The first try
			// goes without reading: where the app has replicated, a new client costs 3 requests.
			if werr := s.awaitVisible(ctx, app.UniqueName); werr != nil && !isReplicating(werr) {
				return werr
			}
		}
		return err
	})
	return sp, err == nil, err
}

// readFirstPressure is the write pressure (see WritePressure) from which a new app's first
// service-principal write waits for reads to show the app: Graph's own warning level. Below it a
// write that fails for replication costs nothing another registration needed, and reading first
// would make every new client 4 requests where Graph has replicated.
const readFirstPressure = 0.8

// nearWriteLimit reports whether the directory has lately said appreg is near its write limit.
func (s *Service) nearWriteLimit() bool {
	wp, ok := s.dir.(WritePressure)
	return ok && wp.WritePressure() >= readFirstPressure
}

// Reads of a new app before writes that need it: how often, and how many in a row must see it,
// normally and near the write limit. Each read lands on one replica, so k in a row all seeing the
// app leave a replica that has not caught up less and less likely to serve the write: with one of
// three behind, (2/3)^k: 44 % for 2 reads, 9 % for 6. Near the limit a failed write is one another
// registration needed, and the wait (1.5 s) costs nothing, as the write budget bounds throughput.
const (
	visiblePoll         = 250 * time.Millisecond
	visibleReads        = 2
	pressedVisibleReads = 6
)

// awaitVisible reads the app until visibleReads reads in a row see it (pressedVisibleReads near
// the write limit), before a write that needs it (its service principal, a password) is tried. A write sent while the app is still replicating fails
// (404, NoBackingApplicationObject) and is retried, and every try spends one of Graph's writes
// (about 3,000 per 150 s per app and tenant, shared by every instance); reads do not. Replicas
// are picked per request, so one read that sees the app does not mean the next request's will:
// reads in a row make a failed write less likely, never impossible, and the caller still retries.
// It gives up, as replication, at the delivery's window or ReplicationTimeout.
func (s *Service) awaitVisible(ctx context.Context, uniqueName string) error {
	deadline := s.opt.Now().Add(s.opt.ReplicationTimeout)
	if end, ok := ctx.Value(windowKey{}).(time.Time); ok && end.Before(deadline) {
		deadline = end
	}
	want := visibleReads
	if s.nearWriteLimit() {
		want = pressedVisibleReads
	}
	seen := 0
	for {
		_, err := s.dir.FindApplication(ctx, uniqueName)
		switch {
		case err == nil:
			if seen++; seen >= want {
				return nil
			}
		case IsNotFound(err):
			seen = 0
		default:
			return err
		}
		if !s.opt.Now().Add(visiblePoll).Before(deadline) {
			return &Error{Code: CodeReplicating, Op: "graph.getApplication", Message: "the new application is not visible yet"}
		}
		if err := s.opt.Sleep(ctx, visiblePoll); err != nil {
			return err
		}
	}
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
	return withForeignTags([]string{TagManaged, TagClientPrefix + clientName}, existing)
}

// withForeignTags adds to ours the tags of existing that are not appreg's.
func withForeignTags(ours, existing []string) []string {
	tags := slices.Clone(ours)
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
	app, err := s.awaitLatestPassword(ctx, app, latest)
	if err != nil {
		return issued{}, false, err
	}
	if latest.ID != "" && strings.EqualFold(latest.Tags[KVTagAppID], app.AppID) {
		if p, ok := app.Password(latest.KeyID()); ok && p.Live(s.opt.Now()) {
			log.Info("live secret reused; no credential added", slog.String("keyId", p.KeyID), slog.String("secretId", latest.ID))
			return issued{version: latest}, true, nil
		}
	}
	is, err := s.issueSecret(ctx, app, issueSpec{clientName: clientName, requestID: requestID, lifetimeDays: lifetimeDays}, log)
	return is, false, err
}

// awaitLatestPassword returns app as a replica that has caught up with latest shows it. Key Vault
// is read-your-writes and Graph is not: a version written moments ago names a password that the
// replica serving this read may not list yet, and judging from that read would add a second
// password and a second version for one request. So while the version is younger than
// ReplicationTimeout, its password's absence is replication, and the app is read again until it
// shows; an older version whose password is missing really lost it (removed by hand, or expired).
func (s *Service) awaitLatestPassword(ctx context.Context, app App, latest SecretVersion) (App, error) {
	keyID := latest.KeyID()
	if latest.ID == "" || keyID == "" || !latest.Managed() || !strings.EqualFold(latest.Tags[KVTagAppID], app.AppID) {
		return app, nil
	}
	if _, ok := app.Password(keyID); ok {
		return app, nil
	}
	settles := latest.Created.Add(s.opt.ReplicationTimeout)
	if !s.opt.Now().Before(settles) {
		return app, nil
	}
	err := s.retry(ctx, settles.Sub(s.opt.Now()), 0, isReplicating, func() error {
		fresh, err := s.dir.FindApplication(ctx, app.UniqueName)
		switch {
		case IsNotFound(err):
			return &Error{Code: CodeReplicating, Op: "graph.getApplication", Message: "the application is not visible yet", Err: err}
		case err != nil:
			return err
		}
		if _, ok := fresh.Password(keyID); !ok {
			return &Error{Code: CodeReplicating, Op: "graph.getApplication", Message: "password " + keyID + ", which Key Vault's latest version holds, is not listed yet"}
		}
		app = fresh
		return nil
	})
	if isReplicating(err) && !s.opt.Now().Before(settles) {
		return app, nil // settled without it: the password is gone
	}
	return app, err
}

// issued is a secret issueSecret stored.
type issued struct {
	version  SecretVersion
	password Password
	verified *bool    // nil: not checked
	notes    []Reason // what the requester should know about it (a clamped lifetime)
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
	clientName, requestID := is.clientName, is.requestID
	np, lifetimeDays, err := s.addPassword(ctx, app, requestID, is.lifetimeDays, log)
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
	verified, verifyNote := s.verify(ctx, app.AppID, np.Secret, log)
	np.Secret = SecretValue{} // the only copy is now in Key Vault
	out := issued{version: ver, password: np.Password, verified: verified}
	if verifyNote != nil {
		out.notes = append(out.notes, *verifyNote)
	}
	if lifetimeDays < is.lifetimeDays {
		out.notes = append(out.notes, Reason{Code: ReasonLifetimeClamped, Field: "secret.lifetimeDays",
			Message: fmt.Sprintf("asked for %d days; the tenant's app management policy refused that, so the secret lasts %d days", is.lifetimeDays, lifetimeDays)})
	}
	return out, nil
}

// lifetimeLadder is what addPassword tries, longest first, after a tenant policy refused the
// lifetime asked for. appreg cannot read the policy (that needs Policy.Read.All), and policies
// are set in round figures, so a few tries find the longest it allows.
var lifetimeLadder = []int{365, 180, 90, 60, 30, 14, 7, 1}

// addPassword adds a password lasting lifetimeDays, or, when a tenant policy caps the lifetime
// (CredentialInvalidLifetimeAsPerAppPolicy), the longest shorter one it accepts, so that a
// policy makes secrets shorter instead of making every rotation fail until the secret expires.
// It returns the lifetime it got.
func (s *Service) addPassword(ctx context.Context, app App, requestID string, lifetimeDays int, log *slog.Logger) (NewPassword, int, error) {
	tries := []int{lifetimeDays}
	for _, d := range lifetimeLadder {
		if d < lifetimeDays {
			tries = append(tries, d)
		}
	}
	var err error
	for _, days := range tries {
		now := s.opt.Now().UTC().Truncate(time.Second)
		spec := PasswordSpec{
			DisplayName: PasswordDisplayPrefix + " " + requestID,
			Start:       now,
			End:         now.Add(time.Duration(days) * 24 * time.Hour),
		}
		var np NewPassword
		err = s.gate.edit(ctx, app.ObjectID, func() error {
			return s.retry(ctx, s.opt.ReplicationTimeout, 0, isReplicating, func() (err error) {
				np, err = s.dir.AddPassword(ctx, app.ObjectID, spec)
				if isReplicating(err) {
					// The next try waits for reads to show the app, not for a write to.
					if werr := s.awaitVisible(ctx, app.UniqueName); werr != nil && !isReplicating(werr) {
						return werr
					}
				}
				return err
			})
		})
		if ReasonOf(err) != RejectLifetimePolicy {
			if err == nil && days < lifetimeDays {
				log.Warn("the tenant's app management policy caps secret lifetimes; issued a shorter secret",
					slog.Int("askedDays", lifetimeDays), slog.Int("issuedDays", days))
			}
			return np, days, err
		}
		log.Info("the tenant's app management policy refused the secret lifetime; trying a shorter one", slog.Int("days", days))
	}
	return NewPassword{}, 0, err
}

// verify signs in with a new secret until Entra has accepted it VerifySuccesses times in a row,
// or VerifyTimeout passes. One success proves little: Entra's replicas can accept a new password
// and refuse it again until they agree (HashiCorp Vault waits for 8 successes in a row, 1 s
// apart, for the same reason). A secret that does not verify in time is still stored and
// announced, marked unverified: the password exists and Key Vault holds it, and retrying the
// message would only issue another one. An answer no wait will change (a verify scope Entra does
// not know) ends the check at once.
//
// The secret itself is fine when the check cannot be made, so that is not a rejection: the event
// says verified:false and carries a reason naming the setting to fix (unknown_verify_scope).
func (s *Service) verify(ctx context.Context, appID string, secret SecretValue, log *slog.Logger) (*bool, *Reason) {
	if s.opt.Verifier == nil {
		return nil, nil
	}
	// The secret is stored already; the delivery's retry window does not cut its check short.
	ctx = context.WithValue(ctx, windowKey{}, nil)
	start := s.opt.Now()
	deadline := start.Add(s.opt.VerifyTimeout)
	successes, tries, backoff := 0, 0, s.opt.RetryBase
	var err error
	for {
		tries++
		err = s.opt.Verifier.Authenticates(ctx, appID, secret)
		wait := s.opt.VerifyInterval
		switch {
		case err == nil:
			if successes++; successes >= s.opt.VerifySuccesses {
				log.Info("new secret signs in", slog.Int("successesInARow", successes), slog.Int("tries", tries), slog.Duration("after", s.opt.Now().Sub(start)))
				ok := true
				return &ok, nil
			}
		case isReplicating(err):
			successes = 0
			wait = backoff/2 + s.opt.Jitter(backoff/2+1)
			backoff = min(backoff*2, s.opt.RetryMax)
		default:
			log.Error("new secret cannot be verified; announcing it unverified", slog.Any("error", err))
			ok := false
			var note *Reason
			if code := ReasonOf(err); code != "" {
				note = &Reason{Code: code, Field: "SECRET_VERIFY_SCOPE", Message: remedies[code]}
			}
			return &ok, note
		}
		if s.opt.Now().Add(wait).After(deadline) {
			break
		}
		if serr := s.opt.Sleep(ctx, wait); serr != nil {
			err = errors.Join(err, serr)
			break
		}
	}
	log.Warn("new secret did not sign in reliably within the verification window; announcing it unverified",
		slog.Duration("after", s.opt.Now().Sub(start)), slog.Int("tries", tries), slog.Int("successesInARow", successes), slog.Any("lastError", err))
	ok := false
	return &ok, nil
}

// compensate removes a password that never reached Key Vault. It runs even when the caller's
// context is ending, because leaving the credential behind is worse than finishing late.
func (s *Service) compensate(ctx context.Context, appObjectID, keyID string, log *slog.Logger) {
	// Nor does the delivery's retry window bound it: a password nobody holds must go.
	ctx, cancel := context.WithTimeout(context.WithValue(context.WithoutCancel(ctx), windowKey{}, nil), time.Minute)
	defer cancel()
	// The app may be minutes old: a replica that does not show it yet answers 404, which is
	// waited out like any replication; other transient failures get StoreAttempts tries.
	transient := func(err error) bool { return Retryable(err) && !isReplicating(err) }
	err := s.gate.edit(ctx, appObjectID, func() error {
		return s.retry(ctx, s.opt.ReplicationTimeout, 0, isReplicating, func() error {
			return s.retry(ctx, 0, s.opt.StoreAttempts, transient, func() error {
				return s.dir.RemovePassword(ctx, appObjectID, keyID)
			})
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
