package registrar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Commands travel on one session-enabled queue, one session per client (SessionId = clientName),
// so every change to a client's credentials — whoever asked for it, whichever instance runs it —
// happens one at a time and in the order it was sent. The message's Subject names the command.
const (
	CommandRegister = "register" // a registration request (also what a message without Subject is)
	CommandRotate   = "rotate"   // a rotation job: scheduled, on-demand or compromised
	CommandMaintain = "maintain" // retire what the policy lets go, for one client; from the timer
	// CommandDeregister offboards a client: roles, passwords, service principal and app removed,
	// its Key Vault secret disabled.
	CommandDeregister = "deregister"
)

// Commands lists every command, as the Subject of a message names it.
var Commands = []string{CommandRegister, CommandRotate, CommandMaintain, CommandVerifyAccess, CommandDeregister}

// Delivery is what the trigger knows about the message being handled.
type Delivery struct {
	MessageID     string
	DeliveryCount int       // 1 on the first attempt
	SessionID     string    // the client the message was sent for
	EnqueuedTime  time.Time // when Service Bus accepted it; the retry budget counts from here
}

// Handle runs one command. A nil error means the message is finished — done, rejected, or failed
// for good with a "failed" event — and may be completed; an error means "give it back for
// redelivery" after this delivery's share of the retry budget was spent retrying it here.
func (s *Service) Handle(ctx context.Context, kind string, body []byte, d Delivery) (Outcome, error) {
	switch kind {
	case "", CommandRegister:
		return s.Register(ctx, body, d)
	case CommandRotate:
		return s.Rotate(ctx, body, d)
	case CommandMaintain:
		return s.Maintain(ctx, body, d)
	case CommandVerifyAccess:
		return s.VerifyAccess(ctx, body, d)
	case CommandDeregister:
		return s.Deregister(ctx, body, d)
	}
	base := Event{RequestID: s.requestIDFor("", d), CommandID: d.MessageID}
	return s.rejected(ctx, base, []Reason{{Code: RejectUnknownCommand, Field: "Subject",
		Message: fmt.Sprintf("%q is not a command; the message Subject must be one of %s", clip(kind, 60), strings.Join(Commands, ", "))}})
}

// requestIDFor is the requestId of the events a message produces: the body's own when it has a
// valid one, else the MessageId when that is a valid id, else one derived from the MessageId, so
// an event's MessageId (<requestId>:<type>) never exceeds Service Bus's 128 characters whatever
// a foreign sender put in its MessageId.
func (s *Service) requestIDFor(fromBody string, d Delivery) string {
	switch {
	case fromBody != "" && requestIDRE.MatchString(fromBody):
		return fromBody
	case requestIDRE.MatchString(d.MessageID):
		return d.MessageID
	case d.MessageID == "":
		return "no-message-id"
	}
	return "msg-" + shortHash(d.MessageID)
}

// checkSession refuses a command whose session is not its client's: it would run concurrently
// with that client's other commands, which is what sessions exist to prevent.
func checkSession(d Delivery, clientName string) []Reason {
	if d.SessionID == "" || clientName == "" || d.SessionID == clientName {
		return nil
	}
	return []Reason{{Code: RejectSessionMismatch, Field: "SessionId",
		Message: fmt.Sprintf("the message's SessionId %q must be its clientName %q, so that the client's commands run one at a time", clip(d.SessionID, 70), clientName)}}
}

// persist runs fn, retrying it in this invocation while its failures are retryable, until this
// delivery's share of the retry budget is spent. Service Bus redelivers an abandoned message at
// once, so without this a role assignment still propagating (minutes) or a replica still
// catching up would burn every delivery in seconds and dead-letter a request that would have
// worked. fn must converge when run again: every command recomputes from Graph and Key Vault.
//
// The budget (RetryBudget) counts from the message's enqueue time and is spread over the
// deliveries left: each delivery keeps retrying for budget-left ÷ deliveries-left, at most
// AttemptTimeout (below the host's functionTimeout and lock renewal), then hands the message
// back. Once the budget is spent, failures are returned at once, so the remaining deliveries run
// out quickly and the message is dead-lettered — after the budget, never before it.
func (s *Service) persist(ctx context.Context, d Delivery, log *slog.Logger, fn func(context.Context) (Outcome, error)) (Outcome, error) {
	windowEnd := s.windowEnd(d)
	// The inner retries (replication, Key Vault writes, verification) stop at the window too, so
	// no single step outlives this delivery's share of the budget.
	ctx = context.WithValue(ctx, windowKey{}, windowEnd)
	ctx = context.WithValue(ctx, commandKey{}, d.MessageID)
	backoff := s.opt.RetryBase
	for attempt := 1; ; attempt++ {
		out, err := fn(ctx)
		if err == nil || !Retryable(err) || isRejection(err) {
			return out, err
		}
		wait := backoff/2 + s.opt.Jitter(backoff/2+1)
		var e *Error
		told := errors.As(err, &e) && e.RetryAfter > wait
		if told {
			wait = e.RetryAfter
		}
		left := windowEnd.Sub(s.opt.Now())
		switch {
		case left <= 0 || (told && wait > left):
			// A service that asked for more time than is left is not asked again early.
			return out, err
		case wait > left:
			// The last try lands on the window's end rather than a backoff before it, so a
			// delivery spends its whole share and the last one fails after the budget, not
			// up to one backoff before it.
			wait = left
		}
		log.Warn("attempt failed; retrying", slog.Any("error", err), slog.Int("delivery", d.DeliveryCount),
			slog.Int("try", attempt), slog.Duration("retryIn", wait))
		if serr := s.opt.Sleep(ctx, wait); serr != nil {
			return out, errors.Join(err, serr)
		}
		backoff = min(backoff*2, s.opt.RetryMax)
	}
}

// windowKey carries the delivery's window end in the context, for the inner retries; commandKey
// the command's MessageId, for the events it publishes.
type (
	windowKey  struct{}
	commandKey struct{}
)

// windowEnd is when this delivery stops retrying and hands the message back.
func (s *Service) windowEnd(d Delivery) time.Time {
	now := s.opt.Now()
	enqueued := d.EnqueuedTime
	if enqueued.IsZero() || enqueued.After(now) {
		enqueued = now
	}
	left := enqueued.Add(s.opt.RetryBudget).Sub(now)
	if left <= 0 {
		return now
	}
	if !s.finalAttempt(d) {
		left /= time.Duration(max(1, s.opt.MaxDeliveryCount-d.DeliveryCount+1))
	}
	return now.Add(min(left, s.opt.AttemptTimeout))
}

func isRejection(err error) bool {
	var rej *rejection
	return errors.As(err, &rej)
}

// finalAttempt reports whether a failure now will dead-letter the message.
func (s *Service) finalAttempt(d Delivery) bool { return d.DeliveryCount >= s.opt.MaxDeliveryCount }

// failed turns a command's error into the message's fate: a rejection completes it with a
// "rejected" event, anything else is handed back for redelivery, and the last delivery also
// publishes "failed" (with what the operator must do) before Service Bus dead-letters it.
func (s *Service) failed(ctx context.Context, base Event, d Delivery, err error, log *slog.Logger) (Outcome, error) {
	var rej *rejection
	if errors.As(err, &rej) {
		return s.rejected(ctx, base, rej.reasons)
	}
	if ErrorCode(err) == CodeInvalid {
		code := ReasonOf(err)
		if code == "" {
			code = RejectDirectoryRefused
		}
		msg := err.Error()
		if r := remedies[code]; r != "" {
			msg = r + " (" + msg + ")"
		}
		return s.rejected(ctx, base, []Reason{{Code: code, Message: clip(msg, maxReasonText)}})
	}
	if !s.finalAttempt(d) {
		log.Warn("delivery failed; handing the message back for redelivery", slog.Any("error", err),
			slog.Int("delivery", d.DeliveryCount), slog.Int("maxDeliveries", s.opt.MaxDeliveryCount))
		return Outcome{}, err
	}
	log.Error("final delivery failed; the message will be dead-lettered", slog.Any("error", err),
		slog.Int("delivery", d.DeliveryCount), slog.Int("maxDeliveries", s.opt.MaxDeliveryCount))
	ev := base
	ev.Type = EventFailed
	ev.Reasons = []Reason{{Code: string(ErrorCode(err)), Message: clip(err.Error(), maxReasonText)}}
	if hint := remedy(err); hint != "" {
		ev.Reasons[0].Message = clip(ev.Reasons[0].Message+"; "+hint, maxReasonText)
	}
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
		log.Error("publishing the failed event failed; the dead-letter sweep will publish it", slog.Any("error", perr))
	}
	return Outcome{}, err
}

// remedies say what a person does about a refusal retrying cannot change.
var remedies = map[string]string{
	RejectQuotaExceeded: "appreg's identity has created the 250 directory objects Entra allows a non-admin principal (soft-deleted ones count; each client is an app and a service principal): " +
		"permanently delete soft-deleted apps it created (DELETE /directory/deletedItems/{id}) or give it a custom role that lifts the quota, then resend",
	RejectClientNameReserved: "an application with this clientName's uniqueName was deleted and Entra reserves the name for 30 days: " +
		"restore it (POST /directory/deletedItems/{id}/restore) or permanently delete it (DELETE /directory/deletedItems/{id}), then resend",
	RejectLifetimePolicy:   "the tenant's app management policy allows a shorter secret lifetime than any appreg tried: ask for a smaller secret.lifetimeDays",
	RejectSecretsBlocked:   "the tenant's app management policy forbids client secrets on this application: ask a tenant administrator for an exemption, or use another credential type",
	RejectAudiencePolicy:   "the tenant's app management policy forbids this signInAudience: ask for AzureADMyOrg",
	RejectTooManyPasswords: "Entra refuses another password on this application: remove unused passwords (appreg rotate <client> --revoke-old)",
	RejectVerifyScope: "Entra issues no token for SECRET_VERIFY_SCOPE (AADSTS500011/70011: no such resource in the tenant), so new secrets cannot be proven; " +
		"set it to a resource the tenant has, such as https://graph.microsoft.com/.default or your FHIR service's https://<workspace>-<fhir>.fhir.azurehealthcareapis.com/.default (handler --check tests it)",
	RejectApplicationTooBig: "the application object has reached Entra's size limit (too many credentials or URIs): remove unused passwords or redirect URIs",
}

// remedy says what an operator does about a failure that outlived the retry budget.
func remedy(err error) string {
	var e *Error
	if !errors.As(err, &e) {
		return ""
	}
	service := strings.SplitN(e.Op, ".", 2)[0]
	switch {
	case e.Code == CodeForbidden && service == "graph":
		return "appreg's identity lacks a Microsoft Graph permission: grant it Application.ReadWrite.OwnedBy (admin consent), restart the Function App so it gets a new token, then resubmit with 'appreg dlq resubmit'"
	case e.Code == CodeForbidden && service == "keyvault":
		return "appreg's identity lacks a Key Vault role: assign it Key Vault Secrets Officer on the vault, then resubmit with 'appreg dlq resubmit'"
	case e.Code == CodeForbidden && service == "servicebus":
		return "appreg's identity lacks a Service Bus role: assign it Azure Service Bus Data Sender on the events topic and the command queue, then resubmit with 'appreg dlq resubmit'"
	case e.Code == CodeForbidden:
		return "appreg's identity was refused: check its role assignments, then resubmit with 'appreg dlq resubmit'"
	case e.Code == CodeThrottled:
		return "the service kept throttling: lower maxConcurrentSessions or the instance count, then resubmit with 'appreg dlq resubmit'"
	}
	return "resubmit with 'appreg dlq resubmit' once the service is healthy"
}
