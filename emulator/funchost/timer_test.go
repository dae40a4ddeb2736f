package funchost

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// timerApp stages an app with one timer function, ScheduleRotations.
func timerApp(tb testing.TB, binding string, start time.Time) (*testApp, *App, *Options, *fakeClock, invocations) {
	tb.Helper()
	ta, settings := newTestApp(tb, appSpec{
		functions: map[string]string{"ScheduleRotations": `{"bindings": [` + binding + `]}`},
		settings:  baseSettings(),
	})
	app, err := Load(ta.dir, settings)
	if err != nil {
		tb.Fatal(err)
	}
	clock := newFakeClock(start)
	opts, _ := fastOptions(tb)
	opts.Clock = clock
	got := make(invocations, 20)
	opts.OnInvocation = func(inv Invocation) { got <- inv }
	return ta, app, opts, clock, got
}

func TestTimerPayloadsAndSchedule(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 3, 30, 0, time.UTC)
	ta, app, opts, clock, got := timerApp(t,
		`{"name": "timer", "type": "timerTrigger", "direction": "in", "schedule": "0 */5 * * * *", "runOnStartup": true}`, start)
	r := startHost(t, app, opts)

	// runOnStartup: no monitor history yet, so ScheduleStatus is null.
	inv := got.next(t)
	if inv.Outcome != Succeeded || inv.IsPastDue || inv.Trigger != "timerTrigger" {
		t.Fatalf("startup run: %+v", inv)
	}
	checkGolden(t, "timer-startup", golden(t, ta.nextRequest(t), inv))

	// On schedule at 03:05:00; the monitor remembers the startup run.
	clock.waitForWaiters(t, 1)
	clock.Advance(90 * time.Second)
	inv = got.next(t)
	checkGolden(t, "timer-monitor", golden(t, ta.nextRequest(t), inv))

	// The clock jumps past 03:10 and 03:15: one run, past due.
	clock.waitForWaiters(t, 1)
	clock.Advance(11 * time.Minute)
	inv = got.next(t)
	if !inv.IsPastDue {
		t.Errorf("run after a jump: IsPastDue false")
	}
	checkGolden(t, "timer-pastdue", golden(t, ta.nextRequest(t), inv))

	// A failure is only logged; the schedule goes on.
	ta.setHandler(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	clock.waitForWaiters(t, 1)
	clock.Advance(5 * time.Minute) // 03:21:00, past 03:20
	if inv = got.next(t); inv.Outcome != Failed || inv.StatusCode != 500 || inv.IsPastDue {
		t.Errorf("failing run: %+v", inv)
	}
	ta.setHandler(ta.ok)
	fired, err := r.host.FireTimer(context.Background(), "ScheduleRotations")
	if err != nil || fired.Outcome != Succeeded {
		t.Fatalf("FireTimer = %+v, %v", fired, err)
	}
	if inv = got.next(t); inv.InvocationID != fired.InvocationID {
		t.Errorf("FireTimer returned %s, OnInvocation saw %s", fired.InvocationID, inv.InvocationID)
	}
	if _, err := r.host.FireTimer(context.Background(), "RegisterApp"); err == nil {
		t.Error("FireTimer of an unknown timer succeeded")
	}
}

func TestTimerRunsNeverOverlap(t *testing.T) {
	ta, app, opts, clock, got := timerApp(t,
		`{"name": "timer", "type": "timerTrigger", "schedule": "*/10 * * * * *"}`, time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC))
	var inFlight, peak, calls atomic.Int32
	arrived, release := make(chan struct{}, 10), make(chan struct{})
	ta.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			return
		}
		n := inFlight.Add(1)
		if n > peak.Load() {
			peak.Store(n)
		}
		calls.Add(1)
		var body struct {
			Data struct {
				Timer struct {
					ScheduleStatus json.RawMessage
				} `json:"timer"`
			}
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		if s := string(body.Data.Timer.ScheduleStatus); s != "null" {
			t.Errorf("sub-minute schedule: monitor is off by default, ScheduleStatus = %s", s)
		}
		arrived <- struct{}{}
		<-release
		inFlight.Add(-1)
		ta.ok(w, r)
	})
	r := startHost(t, app, opts)
	clock.waitForWaiters(t, 1)
	clock.Advance(5 * time.Second) // 00:00:10
	<-arrived
	clock.Advance(time.Minute) // nothing is waiting: the run is still going
	fired := make(chan Invocation, 1)
	go func() {
		inv, err := r.host.FireTimer(context.Background(), "ScheduleRotations")
		if err != nil {
			t.Error(err)
		}
		fired <- inv
	}()
	select {
	case <-arrived:
		t.Fatal("a second run started while the first was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	<-arrived // the fired run, after the first finished
	if inv := <-fired; inv.Outcome != Succeeded {
		t.Errorf("fired run: %+v", inv)
	}
	got.next(t)
	got.next(t)
	if peak.Load() != 1 || calls.Load() != 2 {
		t.Errorf("peak %d concurrent runs over %d calls; want 1 over 2", peak.Load(), calls.Load())
	}
}

func TestFireTimerNeedsARunningHost(t *testing.T) {
	_, app, opts, _, _ := timerApp(t, `{"name": "timer", "type": "timerTrigger", "schedule": "0 0 * * * *"}`, t0)
	h := New(app, opts)
	if _, err := h.FireTimer(context.Background(), "ScheduleRotations"); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("FireTimer before Run: %v", err)
	}
}
