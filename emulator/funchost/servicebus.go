package funchost

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/google/uuid"
)

// Receiver is the part of *azservicebus.Receiver that funchost uses, so the
// listener can be tested with a hand-written fake (the azservicebus
// maintainers' advice in example_mocking_test.go).
type Receiver interface {
	ReceiveMessages(ctx context.Context, maxMessages int, options *azservicebus.ReceiveMessagesOptions) ([]*azservicebus.ReceivedMessage, error)
	CompleteMessage(ctx context.Context, msg *azservicebus.ReceivedMessage, options *azservicebus.CompleteMessageOptions) error
	AbandonMessage(ctx context.Context, msg *azservicebus.ReceivedMessage, options *azservicebus.AbandonMessageOptions) error
	// RenewMessageLock renews msg's lock and updates msg.LockedUntil.
	RenewMessageLock(ctx context.Context, msg *azservicebus.ReceivedMessage, options *azservicebus.RenewMessageLockOptions) error
	Close(ctx context.Context) error
}

var _ Receiver = (*azservicebus.Receiver)(nil)

// SessionReceiver is the part of *azservicebus.SessionReceiver that funchost uses. A session's
// messages are locked by the session's lock, so it renews that instead of message locks.
type SessionReceiver interface {
	ReceiveMessages(ctx context.Context, maxMessages int, options *azservicebus.ReceiveMessagesOptions) ([]*azservicebus.ReceivedMessage, error)
	CompleteMessage(ctx context.Context, msg *azservicebus.ReceivedMessage, options *azservicebus.CompleteMessageOptions) error
	AbandonMessage(ctx context.Context, msg *azservicebus.ReceivedMessage, options *azservicebus.AbandonMessageOptions) error
	RenewSessionLock(ctx context.Context, options *azservicebus.RenewSessionLockOptions) error
	LockedUntil() time.Time
	SessionID() string
	Close(ctx context.Context) error
}

var _ SessionReceiver = (*azservicebus.SessionReceiver)(nil)

// settler is what settling a message needs, from either kind of receiver.
type settler interface {
	CompleteMessage(ctx context.Context, msg *azservicebus.ReceivedMessage, options *azservicebus.CompleteMessageOptions) error
	AbandonMessage(ctx context.Context, msg *azservicebus.ReceivedMessage, options *azservicebus.AbandonMessageOptions) error
}

// settleTimeout bounds a complete or abandon call.
const settleTimeout = 30 * time.Second

// pump receives messages for one function and runs each in its own
// goroutine, never more than maxConcurrentCalls at once. Like the host's
// message pump it holds no message it cannot start on, and it receives only
// while the handler is ready, so a restarting handler does not burn
// delivery counts.
func (h *Host) pump(recvCtx, workCtx context.Context, work *sync.WaitGroup, fn *Function, r Receiver) {
	limit := h.app.Host.ServiceBus.MaxConcurrentCalls
	slots := make(chan struct{}, limit)
	backoff := time.Duration(0)
	for {
		if err := h.worker.waitReady(recvCtx); err != nil {
			return
		}
		select {
		case slots <- struct{}{}:
		case <-recvCtx.Done():
			return
		}
		n := 1
	fill:
		for n < limit {
			select {
			case slots <- struct{}{}:
				n++
			default:
				break fill
			}
		}
		msgs, err := r.ReceiveMessages(recvCtx, n, nil)
		for i := len(msgs); i < n; i++ {
			<-slots
		}
		// Messages that arrived with a cancellation are ours and locked: run
		// them rather than leave them to expire.
		for _, m := range msgs {
			work.Add(1)
			go func() {
				defer work.Done()
				defer func() { <-slots }()
				received := h.clock.Now()
				h.process(workCtx, fn, r, m, func(ctx context.Context) { h.renewLock(ctx, fn, r, m, received) })
			}()
		}
		if err == nil {
			backoff = 0
			continue
		}
		if recvCtx.Err() != nil {
			return
		}
		backoff = min(max(2*backoff, time.Second), 30*time.Second)
		h.log.Error("receiving messages", "function", fn.Name, "entity", fn.ServiceBus.Entity(), "error", err, "retryIn", backoff.String())
		select {
		case <-recvCtx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// process invokes the function for one message, keeping its lock meanwhile
// (keepLock returns when it can keep it no longer), then completes it on
// success and abandons it on failure.
func (h *Host) process(ctx context.Context, fn *Function, r settler, msg *azservicebus.ReceivedMessage, keepLock func(context.Context)) {
	inv := Invocation{
		Function:      fn.Name,
		InvocationID:  uuid.NewString(),
		Trigger:       "serviceBusTrigger",
		MessageID:     msg.MessageID,
		DeliveryCount: msg.DeliveryCount,
	}
	began := time.Now()

	renewCtx, stopRenewing := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		keepLock(renewCtx)
	}()

	body, err := encodeServiceBus(fn.ServiceBus, msg, newSys(fn.Name, h.clock.Now()))
	if err != nil {
		inv.Err = fmt.Errorf("encoding the invocation: %w", err)
	} else {
		res := h.deliver(ctx, fn.Name, inv.InvocationID, body, renewed)
		inv.StatusCode, inv.Logs, inv.Err = res.status, res.logs, res.err
		h.logHandlerLogs(fn.Name, inv.InvocationID, res.logs)
	}
	inv.Duration = time.Since(began)
	stopRenewing()
	<-renewed

	settleCtx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	if inv.Err == nil {
		inv.Outcome = Completed
		inv.SettleErr = r.CompleteMessage(settleCtx, msg, nil)
	} else {
		inv.Outcome = Abandoned
		inv.SettleErr = r.AbandonMessage(settleCtx, msg, nil)
	}
	h.report(inv)
}

// deliver posts an invocation once the handler is ready. A message received while the handler
// was down (the pump's receive was already outstanding when it died), or sent to a port nobody
// listens on because the host has not yet noticed the exit, never reached a handler: it waits for
// the restarted one, holding its lock, instead of failing and costing a delivery. The wait ends
// when the lock renewal gives up (lockGone closes), and then the lock runs out as on Azure.
func (h *Host) deliver(ctx context.Context, function, invocationID string, body []byte, lockGone <-chan struct{}) callResult {
	for {
		readyCtx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-lockGone:
				cancel()
			case <-readyCtx.Done():
			}
		}()
		err := h.worker.waitReady(readyCtx)
		cancel()
		if err != nil {
			return callResult{err: fmt.Errorf("the handler was not ready before the message lock ran out: %w", err)}
		}
		res := h.call(ctx, function, invocationID, body)
		if !errors.Is(res.err, syscall.ECONNREFUSED) {
			return res
		}
		h.log.Warn("the handler refused the connection; holding the message for the restarted handler", "function", function, "invocationId", invocationID)
		if !h.worker.notReachable() {
			select { // running but not listening (yet): give it a moment
			case <-time.After(h.opts.ReadyPollInterval):
			case <-lockGone:
			case <-ctx.Done():
			}
		}
		select {
		case <-lockGone:
			return res
		default:
		}
	}
}

// minRenewInterval keeps a lock that is already (nearly) expired from
// being renewed in a tight loop.
const minRenewInterval = 50 * time.Millisecond

// renewLock renews msg's lock at about half of its remaining duration, read
// from LockedUntil, until ctx ends or maxAutoLockRenewalDuration has passed
// since the message was received.
func (h *Host) renewLock(ctx context.Context, fn *Function, r Receiver, msg *azservicebus.ReceivedMessage, received time.Time) {
	limit := h.app.Host.ServiceBus.MaxAutoLockRenewalDuration
	if limit <= 0 {
		return
	}
	deadline := received.Add(limit)
	lockedUntil := msg.LockedUntil
	for {
		now := h.clock.Now()
		wait := 30 * time.Second // no LockedUntil: assume the default 1 min lock
		if lockedUntil != nil {
			if !now.Before(*lockedUntil) {
				h.log.Warn("message lock expired before it could be renewed; the message will be redelivered", "function", fn.Name, "messageId", msg.MessageID)
				return
			}
			wait = lockedUntil.Sub(now) / 2
		}
		wait = max(wait, minRenewInterval)
		if now.Add(wait).After(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-h.clock.After(wait):
		}
		err := r.RenewMessageLock(ctx, msg, nil)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var sbErr *azservicebus.Error
			if errors.As(err, &sbErr) && sbErr.Code == azservicebus.CodeLockLost {
				h.log.Warn("message lock lost; the message will be redelivered", "function", fn.Name, "messageId", msg.MessageID, "error", err)
				return
			}
			h.log.Warn("renewing message lock", "function", fn.Name, "messageId", msg.MessageID, "error", err)
			continue
		}
		lockedUntil = msg.LockedUntil
		h.log.Debug("message lock renewed", "function", fn.Name, "messageId", msg.MessageID, "lockedUntil", lockedUntil)
	}
}
