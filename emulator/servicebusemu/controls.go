package servicebusemu

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	goamqp "github.com/Azure/go-amqp"

	"appreg/emulator/emu"
	"appreg/emulator/servicebusemu/internal/amqp"
)

// Operations faults, throttles and latency can target. OpSend is a message (or batch) arriving
// on a sender link; the settlements are a receiver's dispositions; the rest are $management
// requests, named as in the Service Bus AMQP reference without the com.microsoft: prefix, and
// $cbs put-token.
const (
	OpSend                    = "send"
	OpComplete                = "complete"
	OpAbandon                 = "abandon"
	OpDefer                   = "defer"
	OpDeadLetter              = "deadLetter"
	OpRelease                 = "release"
	OpPutToken                = "putToken"
	OpRenewLock               = "renewLock"
	OpPeekMessage             = "peekMessage"
	OpReceiveBySequenceNumber = "receiveBySequenceNumber"
	OpScheduleMessage         = "scheduleMessage"
	OpCancelScheduledMessage  = "cancelScheduledMessage"
	OpUpdateDisposition       = "updateDisposition"
	OpRenewSessionLock        = "renewSessionLock"
	OpGetSessionState         = "getSessionState"
	OpSetSessionState         = "setSessionState"
	OpGetMessageSessions      = "getMessageSessions"
)

var operations = []string{
	OpSend, OpComplete, OpAbandon, OpDefer, OpDeadLetter, OpRelease, OpPutToken,
	OpRenewLock, OpPeekMessage, OpReceiveBySequenceNumber, OpScheduleMessage, OpCancelScheduledMessage,
	OpUpdateDisposition, OpRenewSessionLock, OpGetSessionState, OpSetSessionState, OpGetMessageSessions,
}

// managementOps names the $management operations for the controls.
var managementOps = map[string]string{
	"com.microsoft:renew-lock":                 OpRenewLock,
	"com.microsoft:peek-message":               OpPeekMessage,
	"com.microsoft:receive-by-sequence-number": OpReceiveBySequenceNumber,
	"com.microsoft:schedule-message":           OpScheduleMessage,
	"com.microsoft:cancel-scheduled-message":   OpCancelScheduledMessage,
	"com.microsoft:update-disposition":         OpUpdateDisposition,
	"com.microsoft:renew-session-lock":         OpRenewSessionLock,
	"com.microsoft:get-session-state":          OpGetSessionState,
	"com.microsoft:set-session-state":          OpSetSessionState,
	"com.microsoft:get-message-sessions":       OpGetMessageSessions,
}

// Fault is the shared emu.Fault, answered in AMQP: a send or settlement gets a rejected outcome,
// a $management or $cbs request a reply with Status as its status code. Code is the AMQP error
// condition; "" maps Status: 401 and 403 to amqp:unauthorized-access, 404 to amqp:not-found, 408
// and 504 to com.microsoft:timeout, 410 to com.microsoft:message-lock-lost, 413 to
// amqp:link:message-size-exceeded, 429 and 503 to com.microsoft:server-busy (Service Bus's
// throttling, whose replies carry 503), anything else to amqp:internal-error.
type Fault = emu.Fault

// Stats is the shared emu.Stats: calls per operation (the Op constants).
type Stats = emu.Stats

func faultCondition(f *Fault) amqp.Symbol {
	if f.Code != "" {
		return amqp.Symbol(f.Code)
	}
	switch f.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return amqp.ErrUnauthorized
	case http.StatusNotFound:
		return amqp.ErrNotFound
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return amqp.ErrTimeout
	case http.StatusGone:
		return amqp.ErrMessageLockLost
	case http.StatusRequestEntityTooLarge:
		return amqp.ErrMessageSize
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return amqp.ErrServerBusy
	}
	return amqp.ErrInternal
}

func faultDescription(f *Fault) string {
	switch {
	case f.Message != "":
		return f.Message
	case f.Status == http.StatusTooManyRequests:
		// The service's own words, with the wait it asks for.
		return fmt.Sprintf("The request was terminated because the entity is being throttled. Error code : 50009. Please wait %d seconds and try again.", max(f.RetryAfterSeconds(), 1))
	}
	return "Injected by the Service Bus emulator's /_emu/ controls."
}

// faultOutcome is the rejected outcome of a faulted send or settlement.
func faultOutcome(f *Fault) amqp.DeliveryState {
	return amqp.Rejected{Error: &amqp.Error{Condition: faultCondition(f), Description: faultDescription(f)}}
}

// faultReply is the reply to a faulted $management or $cbs request.
func faultReply(cbs bool, f *Fault) *goamqp.Message {
	status := int32(f.Status)
	if status == http.StatusTooManyRequests {
		status = http.StatusServiceUnavailable
	}
	if cbs {
		return statusReply(status, faultDescription(f), string(faultCondition(f)))
	}
	return mgmtReply(status, faultDescription(f), string(faultCondition(f)))
}

// State returns every entity's message counts.
func (s *Server) State() State { return s.broker.state() }

// Handler serves the test controls over HTTP under /_emu/servicebus/, for processes that drive
// the emulator from outside; azemu mounts it on its shared origin. Besides the shared controls:
//
//	POST /_emu/servicebus/drop-connections
//	POST /_emu/servicebus/detach-links?entity=q&condition=amqp:link:detach-forced
//	POST /_emu/servicebus/expire-locks?entity=q
//	GET  /_emu/servicebus/counts?entity=q
//	GET  /_emu/servicebus/dead-letters?entity=q
func (s *Server) Handler() http.Handler { return s.controls }

func (s *Server) controlRoutes() []emu.Route {
	entityErr := func(err error) error {
		if errors.Is(err, errNotFound) {
			return fmt.Errorf("%w: %w", emu.ErrNotFound, err)
		}
		return err
	}
	entity := func(r *http.Request) string { return r.URL.Query().Get("entity") }
	return []emu.Route{
		{Pattern: "POST drop-connections", Handle: func(*http.Request) (any, error) {
			s.DropConnections()
			return nil, nil
		}},
		{Pattern: "POST detach-links", Handle: func(r *http.Request) (any, error) {
			cond := r.URL.Query().Get("condition")
			if cond == "" {
				cond = string(amqp.ErrDetachForced)
			}
			return nil, entityErr(s.DetachLinks(entity(r), cond))
		}},
		{Pattern: "POST expire-locks", Handle: func(r *http.Request) (any, error) {
			return nil, entityErr(s.ExpireLocks(entity(r)))
		}},
		{Pattern: "GET counts", Handle: func(r *http.Request) (any, error) {
			c, err := s.Counts(entity(r))
			return c, entityErr(err)
		}},
		{Pattern: "GET dead-letters", Handle: func(r *http.Request) (any, error) {
			d, err := s.DeadLetters(entity(r))
			return d, entityErr(err)
		}},
	}
}

// requestOp names a $cbs or $management request for the controls.
func requestOp(l *link, req *goamqp.Message) string {
	if l.cbs {
		return OpPutToken
	}
	op, _ := req.ApplicationProperties["operation"].(string)
	if name, ok := managementOps[op]; ok {
		return name
	}
	return strings.TrimPrefix(op, "com.microsoft:")
}
