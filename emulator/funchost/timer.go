package funchost

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

type fireRequest struct {
	done chan Invocation
}

// ErrNotRunning is FireTimer's answer before Run has started the timers or after it stopped.
var ErrNotRunning = errors.New("the host is not running")

// FireTimer runs a timer function now, as the portal's "Run" button or
// Core Tools' admin endpoint would, and returns when it has finished. The
// run is serialised with the scheduled ones, so runs never overlap.
func (h *Host) FireTimer(ctx context.Context, function string) (Invocation, error) {
	ch, ok := h.timers[function]
	if !ok {
		return Invocation{}, fmt.Errorf("no timer function %q", function)
	}
	h.mu.Lock()
	live := h.timersLive
	h.mu.Unlock()
	if !live {
		return Invocation{}, ErrNotRunning
	}
	req := fireRequest{done: make(chan Invocation, 1)}
	select {
	case ch <- req:
	case <-ctx.Done():
		return Invocation{}, ctx.Err()
	}
	select {
	case inv := <-req.done:
		return inv, nil
	case <-ctx.Done():
		return Invocation{}, ctx.Err()
	}
}

// runTimer fires one timer function on its schedule until stopCtx ends.
// Runs happen one at a time in this goroutine, so they never overlap; an
// occurrence that passes while a run is still going is skipped, as in the
// host. The schedule monitor (useMonitor) is kept in memory, so
// ScheduleStatus is null on the first run after a start.
func (h *Host) runTimer(stopCtx, workCtx context.Context, fn *Function) {
	t := fn.Timer
	var status *scheduleStatus
	run := func(scheduled time.Time, pastDue bool) Invocation {
		inv := h.invokeTimer(stopCtx, workCtx, fn, status, pastDue)
		if t.UseMonitor {
			status = &scheduleStatus{Last: scheduled, Next: t.Schedule.Next(scheduled), LastUpdated: h.clock.Now()}
		}
		return inv
	}
	if t.RunOnStartup {
		run(h.clock.Now(), false)
	}
	fire := h.timers[fn.Name]
	for {
		now := h.clock.Now()
		next := t.Schedule.Next(now)
		if next.IsZero() {
			h.log.Warn("timer schedule has no further occurrence", "function", fn.Name, "schedule", t.Schedule.String())
			select {
			case <-stopCtx.Done():
				return
			case req := <-fire:
				req.done <- run(now, false)
			}
			continue
		}
		select {
		case <-stopCtx.Done():
			return
		case req := <-fire:
			req.done <- run(now, false)
		case <-h.clock.After(next.Sub(now)):
			// Past due: the clock moved beyond the occurrence after this one
			// too, so at least one run was missed (a suspended machine, or a
			// test clock advanced by more than one interval).
			after := t.Schedule.Next(next)
			pastDue := !after.IsZero() && !h.clock.Now().Before(after)
			run(next, pastDue)
		}
	}
}

// invokeTimer runs one timer invocation; a failure is only logged, as in
// the host (a timer has no retry without a retry policy).
func (h *Host) invokeTimer(stopCtx, workCtx context.Context, fn *Function, status *scheduleStatus, pastDue bool) Invocation {
	inv := Invocation{
		Function:     fn.Name,
		InvocationID: uuid.NewString(),
		Trigger:      "timerTrigger",
		IsPastDue:    pastDue,
	}
	began := time.Now()
	if err := h.worker.waitReady(stopCtx); err != nil {
		inv.Err, inv.Outcome = errors.New("host stopping before the handler was ready"), Failed
		h.report(inv)
		return inv
	}
	body, err := encodeTimer(fn.Timer, status, pastDue, newSys(fn.Name, h.clock.Now()))
	if err != nil {
		inv.Err = fmt.Errorf("encoding the invocation: %w", err)
	} else {
		res := h.call(workCtx, fn.Name, inv.InvocationID, body)
		inv.StatusCode, inv.Logs, inv.Err = res.status, res.logs, res.err
		h.logHandlerLogs(fn.Name, inv.InvocationID, res.logs)
	}
	inv.Duration = time.Since(began)
	inv.Outcome = Succeeded
	if inv.Err != nil {
		inv.Outcome = Failed
	}
	h.report(inv)
	return inv
}
