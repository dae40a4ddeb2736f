package funchost

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

// sessionPump runs a session-enabled function as the Service Bus extension's session processor
// does: maxConcurrentSessions workers each accept the next session that has messages, run its
// messages one at a time in the order they were sent, and let the session go once it has been
// idle for sessionIdleTimeout. Service Bus gives a session to one receiver at a time, across
// every host, so a session's messages never run concurrently, here or anywhere.
func (h *Host) sessionPump(recvCtx, workCtx context.Context, work *sync.WaitGroup, fn *Function, accept func(context.Context, *Function) (SessionReceiver, error)) {
	var workers sync.WaitGroup
	for range h.app.Host.ServiceBus.MaxConcurrentSessions {
		workers.Go(func() { h.sessionWorker(recvCtx, workCtx, work, fn, accept) })
	}
	workers.Wait()
}

func (h *Host) sessionWorker(recvCtx, workCtx context.Context, work *sync.WaitGroup, fn *Function, accept func(context.Context, *Function) (SessionReceiver, error)) {
	backoff := time.Duration(0)
	for {
		// A session is taken only while the handler is up: its lock would run out, and its
		// messages' deliveries with it, while the handler restarts.
		if err := h.worker.waitReady(recvCtx); err != nil {
			return
		}
		sr, err := accept(recvCtx, fn)
		if err != nil {
			if recvCtx.Err() != nil {
				return
			}
			var sbErr *azservicebus.Error
			if errors.As(err, &sbErr) && sbErr.Code == azservicebus.CodeTimeout {
				backoff = 0
				continue // no session has messages: ask again
			}
			backoff = min(max(2*backoff, time.Second), 30*time.Second)
			h.log.Error("accepting a session", "function", fn.Name, "entity", fn.ServiceBus.Entity(), "error", err, "retryIn", backoff.String())
			select {
			case <-recvCtx.Done():
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		h.runSession(recvCtx, workCtx, work, fn, sr)
	}
}

// runSession runs one accepted session's messages until it idles, its lock is lost, or the host
// stops, then closes it so another receiver (on any host) may take it.
func (h *Host) runSession(recvCtx, workCtx context.Context, work *sync.WaitGroup, fn *Function, sr SessionReceiver) {
	log := h.log.With("function", fn.Name, "sessionId", sr.SessionID())
	log.Debug("session accepted", "lockedUntil", sr.LockedUntil())
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
		defer cancel()
		if err := sr.Close(ctx); err != nil {
			log.Warn("closing session", "error", err)
		}
		log.Debug("session released")
	}()
	for {
		if err := h.worker.waitReady(recvCtx); err != nil {
			return
		}
		rctx, cancel := context.WithTimeout(recvCtx, h.app.Host.ServiceBus.SessionIdleTimeout)
		msgs, err := sr.ReceiveMessages(rctx, 1, nil)
		idle := rctx.Err() != nil
		cancel()
		// A message that arrived with a cancellation is ours and locked: run it.
		for _, m := range msgs {
			work.Add(1)
			received := h.clock.Now()
			h.process(workCtx, fn, sr, m, func(ctx context.Context) { h.renewSessionLock(ctx, fn, sr, received) })
			work.Done()
		}
		switch {
		case len(msgs) > 0:
		case err == nil || idle || recvCtx.Err() != nil:
			return // idle or stopping: let the session go
		default:
			log.Warn("receiving from session", "error", err)
			return
		}
	}
}

// renewSessionLock keeps a session's lock while one of its messages is processed: at about half
// its remaining time, until ctx ends or maxAutoLockRenewalDuration has passed since the message
// was received.
func (h *Host) renewSessionLock(ctx context.Context, fn *Function, sr SessionReceiver, received time.Time) {
	limit := h.app.Host.ServiceBus.MaxAutoLockRenewalDuration
	if limit <= 0 {
		return
	}
	deadline := received.Add(limit)
	for {
		now := h.clock.Now()
		until := sr.LockedUntil()
		if !now.Before(until) {
			h.log.Warn("session lock expired before it could be renewed; its message will be redelivered", "function", fn.Name, "sessionId", sr.SessionID())
			return
		}
		wait := max(until.Sub(now)/2, minRenewInterval)
		if now.Add(wait).After(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-h.clock.After(wait):
		}
		err := sr.RenewSessionLock(ctx, nil)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var sbErr *azservicebus.Error
			if errors.As(err, &sbErr) && (sbErr.Code == azservicebus.CodeLockLost) {
				h.log.Warn("session lock lost; its message will be redelivered", "function", fn.Name, "sessionId", sr.SessionID(), "error", err)
				return
			}
			h.log.Warn("renewing session lock", "function", fn.Name, "sessionId", sr.SessionID(), "error", err)
			continue
		}
		h.log.Debug("session lock renewed", "function", fn.Name, "sessionId", sr.SessionID(), "lockedUntil", sr.LockedUntil())
	}
}
