package registrar

import (
	"context"
	"log/slog"
	"slices"
	"strings"
)

// Deregistration is a validated deregister request.
type Deregistration struct {
	RequestID   string
	ClientName  string
	RequestedBy string
}

// Deregister offboards a client: the FHIR roles appreg granted, every password, the service
// principal and the application are removed — the directory objects for good, so the name and
// appreg's object quota are free again — and the latest Key Vault version is disabled, not
// purged, so the last value stays recoverable for audit. Every step checks before it acts, so a
// redelivery or a second request converges and says "deregistered" again.
func (s *Service) Deregister(ctx context.Context, body []byte, d Delivery) (Outcome, error) {
	req, reasons := ParseDeregistration(body)
	base := Event{RequestID: s.requestIDFor(req.RequestID, d), ClientName: req.ClientName, CommandID: d.MessageID}
	if len(reasons) == 0 {
		reasons = checkSession(d, req.ClientName)
	}
	if len(reasons) > 0 {
		return s.rejected(ctx, base, reasons)
	}
	log := s.log.With(slog.String("requestId", req.RequestID), slog.String("clientName", req.ClientName), slog.Int("deliveryCount", d.DeliveryCount))
	log.Info("deregistration started", slog.String("requestedBy", req.RequestedBy))
	out, err := s.persist(ctx, d, log, func(ctx context.Context) (Outcome, error) { return s.deregister(ctx, req, log) })
	if err != nil {
		return s.failed(ctx, base, d, err, log)
	}
	return out, nil
}

func (s *Service) deregister(ctx context.Context, req Deregistration, log *slog.Logger) (Outcome, error) {
	unlock, err := s.gate.lock(ctx, req.ClientName)
	if err != nil {
		return Outcome{}, err
	}
	defer unlock()

	name := s.SecretName(req.ClientName)
	latest, err := s.store.Latest(ctx, name)
	switch {
	case err == nil && !latest.Managed():
		return Outcome{}, reject(RejectSecretConflict, "clientName", "Key Vault secret "+name+" exists and was not written by appreg")
	case err != nil && !IsNotFound(err):
		return Outcome{}, err
	}
	ev := Event{Type: EventDeregistered, RequestID: req.RequestID, ClientName: req.ClientName,
		AppID: latest.Tags[KVTagAppID], AppObjectID: latest.Tags[KVTagAppObjectID], SecretURI: latest.ID}

	app, err := s.dir.FindApplication(ctx, s.UniqueName(req.ClientName))
	deleted := false
	switch {
	case err == nil:
		if err := s.mayManage(app); err != nil {
			return Outcome{}, err
		}
		ev.AppID, ev.AppObjectID = app.AppID, app.ObjectID
		// The secret is disabled first: it marks the deregistration as begun, so that a later
		// delivery that no longer finds the app knows it is gone, not still replicating.
		if err := s.disableSecret(ctx, name, latest, log); err != nil {
			return Outcome{}, err
		}
		latest.Enabled = false
		if deleted, err = s.removeApplication(ctx, app, log); err != nil {
			return Outcome{}, err
		}
	case IsNotFound(err) && latest.Managed() && latest.Enabled && s.opt.Now().Sub(latest.Created) < s.opt.ReplicationTimeout:
		// An enabled secret written this recently belongs to an app the replica serving this
		// read has not caught up with (a deregistration that had begun would have disabled it);
		// calling it gone would leave it, its passwords and its roles behind.
		return Outcome{}, &Error{Code: CodeReplicating, Op: "graph.getApplication", Message: "the application is not visible yet", Err: err}
	case IsNotFound(err):
		log.Info("deregistration: the application is gone already")
	default:
		return Outcome{}, err
	}
	// Purged whether this delivery deleted it or an earlier one did and then died.
	if ev.AppObjectID != "" {
		if err := s.purge(ctx, ev.AppObjectID, deleted); err != nil {
			return Outcome{}, err
		}
	}
	if err := s.disableSecret(ctx, name, latest, log); err != nil {
		return Outcome{}, err
	}
	ev, err = s.publish(ctx, ev)
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Event: ev}, nil
}

// disableSecret disables the client's secret, never purging it, so its last value stays
// recoverable for audit.
func (s *Service) disableSecret(ctx context.Context, name string, latest SecretVersion, log *slog.Logger) error {
	if latest.ID == "" || !latest.Enabled {
		return nil
	}
	if err := s.store.Disable(ctx, name); err != nil {
		return err
	}
	log.Info("deregistration: Key Vault secret disabled", slog.String("secretId", latest.ID))
	return nil
}

// removeApplication removes what appreg made for an app, in the order that leaves nothing
// behind if it stops anywhere: role assignments first (they need the service principal's id,
// which is lost with it), then passwords, the service principal and the application.
func (s *Service) removeApplication(ctx context.Context, app App, log *slog.Logger) (deleted bool, err error) {
	sp, err := s.servicePrincipalOf(ctx, app)
	switch {
	case err == nil:
		if s.opt.Access != nil {
			managed := s.managedRoleIDs()
			for _, svc := range s.opt.FHIR.Services {
				have, err := s.opt.Access.List(ctx, svc.ID, sp.ObjectID)
				if err != nil {
					return false, err
				}
				for _, a := range have {
					if _, ours := managed[strings.ToLower(a.RoleDefinitionID)]; !ours {
						continue
					}
					if err := s.opt.Access.Revoke(ctx, a); err != nil {
						return false, err
					}
					log.Info("deregistration: FHIR role removed", slog.String("service", svc.ID), slog.String("role", managed[strings.ToLower(a.RoleDefinitionID)]))
				}
			}
		}
	case !IsNotFound(err):
		return false, err
	}
	for _, p := range app.Passwords {
		err := s.gate.edit(ctx, app.ObjectID, func() error { return s.dir.RemovePassword(ctx, app.ObjectID, p.KeyID) })
		if err != nil && !IsNotFound(err) {
			return false, err
		}
		if _, err := s.publish(ctx, retiredEvent(app, p, "deregistered")); err != nil {
			return false, err
		}
	}
	if sp.ObjectID != "" {
		err := s.dir.DeleteServicePrincipal(ctx, sp.ObjectID)
		if err != nil && !IsNotFound(err) {
			return false, err
		}
		if err := s.purge(ctx, sp.ObjectID, err == nil); err != nil {
			return false, err
		}
	}
	err = s.dir.DeleteApplication(ctx, app.ObjectID)
	if err != nil && !IsNotFound(err) {
		return false, err
	}
	log.Info("deregistration: application deleted", slog.String("appId", app.AppID))
	return err == nil, nil
}

// servicePrincipalOf reads app's service principal. appreg makes one with every app, so while the
// app is younger than ReplicationTimeout, "not found" means the replica serving the read has not
// caught up, and it is read again until it shows: skipping it would leave its FHIR role
// assignments behind, which the app's deletion does not remove. For an older app (or one whose
// age Graph did not say) not found is the answer: someone deleted the service principal.
func (s *Service) servicePrincipalOf(ctx context.Context, app App) (ServicePrincipal, error) {
	settles := app.Created.Add(s.opt.ReplicationTimeout)
	if app.Created.IsZero() || !s.opt.Now().Before(settles) {
		return s.dir.FindServicePrincipal(ctx, app.AppID)
	}
	var sp ServicePrincipal
	var missing error
	err := s.retry(ctx, settles.Sub(s.opt.Now()), 0, isReplicating, func() (err error) {
		sp, err = s.dir.FindServicePrincipal(ctx, app.AppID)
		if IsNotFound(err) {
			missing = err
			return &Error{Code: CodeReplicating, Op: "graph.getServicePrincipal", Message: "the application's service principal is not visible yet", Err: err}
		}
		return err
	})
	if isReplicating(err) && missing != nil && !s.opt.Now().Before(settles) {
		return ServicePrincipal{}, missing // settled without it: it is gone
	}
	return sp, err
}

// purge removes a soft-deleted object for good, so it stops counting against the identity's
// directory-object quota and its uniqueName is free. Deleted items replicate like everything
// else: right after the delete, the replica serving the purge may answer 404, which is waited
// out; a 404 for an object this delivery did not delete means an earlier one purged it.
func (s *Service) purge(ctx context.Context, objectID string, justDeleted bool) error {
	err := s.retry(ctx, s.opt.ReplicationTimeout, 0, isReplicating, func() error {
		err := s.dir.Purge(ctx, objectID)
		if IsNotFound(err) && justDeleted {
			return &Error{Code: CodeReplicating, Op: "graph.purgeDeletedItem", Message: "the deleted object is not among the deleted items yet", Err: err}
		}
		return err
	})
	if IsNotFound(err) {
		return nil
	}
	return err
}

// ParseDeregistration validates a deregister request body: {"requestId", "clientName",
// "requestedBy"?}.
func ParseDeregistration(body []byte) (Deregistration, []Reason) {
	var r Deregistration
	d, reasons := newFields(body)
	if d == nil {
		return r, reasons
	}
	r.RequestID = d.str("requestId", true)
	r.ClientName = d.str("clientName", true)
	r.RequestedBy = d.str("requestedBy", false)
	d.unknown()
	if r.RequestID != "" && !requestIDRE.MatchString(r.RequestID) {
		d.add(RejectInvalidRequestID, "requestId", "must be 1-100 characters of letters, digits, '.', '_', ':' or '-', starting with a letter or digit")
	}
	if r.ClientName != "" && !clientNameRE.MatchString(r.ClientName) {
		d.add(RejectInvalidClientName, "clientName", "must match ^[a-z][a-z0-9-]{2,62}$")
	}
	if len(r.RequestedBy) > maxRequestedBy {
		d.add(RejectTooLong, "requestedBy", "at most 256 bytes")
	}
	slices.SortFunc(d.reasons, func(a, b Reason) int { return strings.Compare(a.Field, b.Field) })
	return r, capReasons(d.reasons)
}
