package funchost

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/google/uuid"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// sbApp stages an app with one serviceBusTrigger function, RegisterApp,
// whose messages come from the returned fake receiver.
func sbApp(tb testing.TB, host map[string]any) (*testApp, *App, *fakeReceiver, *Options, *logBuffer, *fakeClock) {
	tb.Helper()
	ta, settings := newTestApp(tb, appSpec{
		host:      host,
		functions: map[string]string{"RegisterApp": sbFunction},
		settings:  baseSettings(),
	})
	app, err := Load(ta.dir, settings)
	if err != nil {
		tb.Fatal(err)
	}
	clock := newFakeClock(t0)
	fake := newFakeReceiver(clock)
	opts, lb := fastOptions(tb)
	opts.Clock = clock
	opts.NewReceiver = func(_ context.Context, fn *Function) (Receiver, error) {
		if fn.Name != "RegisterApp" {
			tb.Errorf("receiver requested for %s", fn.Name)
		}
		return fake, nil
	}
	return ta, app, fake, opts, lb, clock
}

func newMessage(id, body string) *azservicebus.ReceivedMessage {
	enq := t0.Add(-time.Second)
	exp := enq.Add(14 * 24 * time.Hour)
	return &azservicebus.ReceivedMessage{
		MessageID:      id,
		Body:           []byte(body),
		ContentType:    ptr("application/json"),
		SequenceNumber: ptr(int64(7)),
		EnqueuedTime:   &enq,
		ExpiresAt:      &exp,
		LockToken:      uuid.MustParse("6f4e3c2a-1b0d-4e5f-8a7b-9c8d7e6f5a4b"),
	}
}

func TestHandlerStartsWithTheHostsEnvironment(t *testing.T) {
	ta, settings := newTestApp(t, appSpec{
		host: map[string]any{"customHandler": map[string]any{"description": map[string]any{
			"defaultExecutablePath": mustExecutable(t),
			"workingDirectory":      "work",
			"arguments":             []string{"--flag", "%APP_SETTING%"},
		}}},
		functions: map[string]string{"Yearly": `{"bindings": [{"name": "t", "type": "timerTrigger", "schedule": "0 0 0 1 1 *"}]}`},
		settings:  map[string]string{"APP_SETTING": "from-settings"},
	})
	writeFile(t, ta.dir+"/work/.keep", "")
	ta.setStartMode(func(int) string { return "slow" }) // readiness must be polled for
	app, err := Load(ta.dir, settings)
	if err != nil {
		t.Fatal(err)
	}
	opts, lb := fastOptions(t)
	opts.Environ = []string{"FUNCHOST_TEST_BASE=base", "APP_SETTING=overridden-by-the-app-setting"}
	events := make(chan HandlerEvent, 10)
	opts.OnHandler = func(ev HandlerEvent) { events <- ev }
	r := startHost(t, app, opts)

	rep := ta.nextStart(t)
	if got := nextEvent(t, events); got.Kind != HandlerStarted || got.PID != rep.PID {
		t.Errorf("first event = %+v, want started with pid %d", got, rep.PID)
	}
	if got := nextEvent(t, events); got.Kind != HandlerReady {
		t.Errorf("second event = %+v, want ready", got)
	}
	env := rep.Env
	port := env["FUNCTIONS_CUSTOMHANDLER_PORT"]
	checks := map[string]string{
		"FUNCTIONS_HTTPWORKER_PORT": port,
		"FUNCTIONS_HTTPWORKER_ID":   env["FUNCTIONS_CUSTOMHANDLER_WORKER_ID"],
		"FUNCTIONS_APP_ROOT_PATH":   app.Dir,
		"FUNCTIONS_WORKER_RUNTIME":  "custom",
		"APP_SETTING":               "from-settings",
		"FUNCHOST_TEST_BASE":        "base",
	}
	for k, want := range checks {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
	if port == "" || r.host.HandlerURL() != "http://127.0.0.1:"+port {
		t.Errorf("port %q, HandlerURL %s", port, r.host.HandlerURL())
	}
	if _, err := uuid.Parse(env["FUNCTIONS_CUSTOMHANDLER_WORKER_ID"]); err != nil {
		t.Errorf("worker id: %v", err)
	}
	if want := []string{"--flag", "from-settings"}; strings.Join(rep.Args, " ") != strings.Join(want, " ") {
		t.Errorf("args = %q, want %q", rep.Args, want)
	}
	if rep.Dir != app.Dir+"/work" {
		t.Errorf("working directory = %s, want %s/work", rep.Dir, app.Dir)
	}

	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if got := nextEvent(t, events); got.Kind != HandlerExited || got.Err != nil {
		t.Errorf("after stop: %+v, want a clean exit", got)
	}
	var lines []string
	for _, rec := range lb.records("handler output") {
		lines = append(lines, rec["stream"].(string)+": "+rec["line"].(string))
	}
	joined := strings.Join(lines, "\n")
	for _, want := range []string{"stdout: test handler starting", "stderr: test handler stderr line"} {
		if !strings.Contains(joined, want) {
			t.Errorf("handler output forwarded:\n%s\nwant a line %q", joined, want)
		}
	}
}

func mustExecutable(tb testing.TB) string {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	return exe
}

func nextEvent(tb testing.TB, ch <-chan HandlerEvent) HandlerEvent {
	tb.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(waitTime):
		tb.Fatal("no handler event")
		return HandlerEvent{}
	}
}

func TestOutcomes(t *testing.T) {
	const functionTimeout = 300 * time.Millisecond
	ta, app, fake, opts, lb, _ := sbApp(t, map[string]any{"functionTimeout": "00:00:00.3"})
	got := make(invocations, 10)
	opts.OnInvocation = func(inv Invocation) { got <- inv }
	startHost(t, app, opts)

	answer := func(status int, contentType, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			if contentType != "" {
				w.Header().Set("Content-Type", contentType)
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}
	}
	const good = `{"Outputs":{},"Logs":["line one","line two"],"ReturnValue":null}`
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    Outcome
		status  int
		wantErr string
	}{
		{"OK", answer(200, "application/json", good), Completed, 200, ""},
		{"CreatedWithCharset", answer(201, "application/json; charset=utf-8", `{}`), Completed, 201, ""},
		{"TextJSON", answer(200, "text/json", `{"Logs":null}`), Completed, 200, ""},
		{"ServerError", answer(500, "application/json", good), Abandoned, 500, "handler answered HTTP 500"},
		{"NotFound", answer(404, "", "404 page not found"), Abandoned, 404, "HTTP 404"},
		{"TextPlain", answer(200, "text/plain; charset=utf-8", good), Abandoned, 200, "Content-Type text/plain; charset=utf-8"},
		{"SniffedByGo", answer(200, "", good), Abandoned, 200, "Content-Type text/plain"},
		{"Unparsable", answer(200, "application/json", `{"Logs": [`), Abandoned, 200, "does not parse"},
		{"WrongShape", answer(200, "application/json", `{"Logs": "not a list"}`), Abandoned, 200, "does not parse"},
		{"Array", answer(200, "application/json", `[]`), Abandoned, 200, "not a JSON object"},
		{"Empty", answer(200, "application/json", ``), Abandoned, 200, "empty body"},
		{"Null", answer(200, "application/json", `null`), Abandoned, 200, "empty body"},
		{"Timeout", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-time.After(5 * functionTimeout):
			}
		}, Abandoned, 0, "timed out after functionTimeout 00:00:00.3000000"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ta.setHandler(tt.handler)
			msg := newMessage(tt.name, `{"secret":"BODY-MARKER-`+tt.name+`"}`)
			fake.send(msg)
			inv := got.next(t)
			s := fake.next(t)
			wantOp := map[Outcome]string{Completed: "complete", Abandoned: "abandon"}[tt.want]
			if inv.Outcome != tt.want || s.op != wantOp {
				t.Errorf("outcome %s, settlement %s; want %s", inv.Outcome, s.op, tt.want)
			}
			if s.msg != msg {
				t.Errorf("settled another message")
			}
			if inv.StatusCode != tt.status || inv.MessageID != tt.name || inv.DeliveryCount != 1 || inv.Trigger != "serviceBusTrigger" {
				t.Errorf("invocation = %+v", inv)
			}
			switch {
			case tt.wantErr == "" && inv.Err != nil:
				t.Errorf("error = %v, want none", inv.Err)
			case tt.wantErr != "" && (inv.Err == nil || !strings.Contains(inv.Err.Error(), tt.wantErr)):
				t.Errorf("error = %v, want it to contain %q", inv.Err, tt.wantErr)
			}
			recs := lb.records("invocation")
			if len(recs) != i+1 {
				t.Fatalf("%d invocation log records, want %d", len(recs), i+1)
			}
			rec := recs[i]
			if rec["outcome"] != string(tt.want) || rec["messageId"] != tt.name || rec["invocationId"] != inv.InvocationID || rec["function"] != "RegisterApp" {
				t.Errorf("log record = %v", rec)
			}
		})
	}
	if strings.Contains(lb.String(), "BODY-MARKER") {
		t.Error("a message body reached the log")
	}
	var logs []string
	for _, rec := range lb.records("function log") {
		logs = append(logs, rec["log"].(string))
	}
	// Logs are shown whenever the body parses, whatever the status or
	// Content-Type: OK, ServerError, TextPlain and SniffedByGo.
	if want := strings.Repeat("line one,line two,", 4); strings.Join(logs, ",")+"," != want {
		t.Errorf("function logs = %q, want %q", logs, want)
	}
}

func TestHandlerKilledMidFlightIsRestartedAndTheMessageRedelivered(t *testing.T) {
	ta, app, fake, opts, lb, _ := sbApp(t, nil)
	events := make(chan HandlerEvent, 20)
	opts.OnHandler = func(ev HandlerEvent) { events <- ev }
	got := make(invocations, 10)
	opts.OnInvocation = func(inv Invocation) { got <- inv }
	var calls atomic.Int32
	ta.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			return
		}
		if calls.Add(1) == 1 {
			w.Header().Set("X-Test-Die", "1") // the child exits before answering
			return
		}
		ta.ok(w, r)
	})
	startHost(t, app, opts)
	first := ta.nextStart(t)

	fake.send(newMessage("m1", `{"n":1}`))
	// The crash costs the message one delivery, and only one. Messages that
	// arrive after the handler died (m1's redelivery, and m2) find its port
	// refusing connections: they never reached a handler, so they are held
	// for the restarted one instead of being abandoned (D4: 28 deliveries
	// were burned that way in one run).
	first1 := got.next(t)
	if first1.Outcome != Abandoned || first1.DeliveryCount != 1 || !strings.Contains(first1.Err.Error(), "calling the handler") {
		t.Fatalf("first delivery: %+v", first1)
	}
	for ev := range events {
		if ev.Kind == HandlerExited {
			break
		}
	}
	redelivered := newMessage("m1", `{"n":1}`)
	redelivered.DeliveryCount = 2
	fake.send(redelivered)
	fake.send(newMessage("m2", `{"n":2}`))
	done := map[string]Invocation{}
	for range 2 {
		inv := got.next(t)
		done[inv.MessageID] = inv
	}
	if inv := done["m1"]; inv.Outcome != Completed || inv.DeliveryCount != 2 {
		t.Fatalf("m1 after the crash: %+v; want completed on its second delivery", inv)
	}
	if inv := done["m2"]; inv.Outcome != Completed || inv.DeliveryCount != 1 {
		t.Fatalf("m2 sent while the handler was down: %+v; want completed on its first delivery", inv)
	}
	if second := ta.nextStart(t); second.PID == first.PID {
		t.Fatal("the handler was not restarted")
	}
	var kinds []string
	for len(events) > 0 {
		ev := <-events
		kinds = append(kinds, string(ev.Kind))
	}
	if want := "started,ready"; strings.Join(kinds, ",") != want {
		t.Errorf("handler events after the exit %s, want %s", strings.Join(kinds, ","), want)
	}
	if len(lb.records("handler failed")) != 1 {
		t.Errorf("want one 'handler failed' log record")
	}
}

// TestHandlerKeepsBeingRestarted covers D4: funchost gave up after 11 failures in a row and took
// the whole local stack down; Azure restarts a failed host for as long as it takes.
func TestHandlerKeepsBeingRestarted(t *testing.T) {
	const crashes = 15
	ta, app, fake, opts, _, _ := sbApp(t, nil)
	ta.setStartMode(func(n int) string {
		if n >= 2 && n <= crashes+1 { // the first start works; the next fifteen die at once
			return "exit"
		}
		return ""
	})
	ready := make(chan HandlerEvent, 64)
	opts.OnHandler = func(ev HandlerEvent) {
		if ev.Kind == HandlerReady {
			ready <- ev
		}
	}
	got := make(invocations, 2)
	opts.OnInvocation = func(inv Invocation) { got <- inv }
	calls := 0
	ta.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if calls++; calls == 1 {
				w.Header().Set("X-Test-Die", "1")
				return
			}
		}
		ta.ok(w, r)
	})
	startHost(t, app, opts)
	<-ready
	fake.send(newMessage("m1", "{}"))
	if inv := got.next(t); inv.Outcome != Abandoned {
		t.Fatalf("first delivery %+v", inv)
	}
	select {
	case <-ready:
	case <-time.After(waitTime):
		t.Fatalf("the handler was not brought back after %d crashes in a row", crashes)
	}
	redelivered := newMessage("m1", "{}")
	redelivered.DeliveryCount = 2
	fake.send(redelivered)
	if inv := got.next(t); inv.Outcome != Completed || inv.DeliveryCount != 2 {
		t.Fatalf("after the restarts: %+v", inv)
	}
}

func TestHandlerThatNeverStartsFailsRun(t *testing.T) {
	tests := []struct {
		name, mode, want string
	}{
		{"ExitsAtOnce", "exit", "handler exited before it answered GET /: exit status 3"},
		{"NeverListens", "hang", "did not answer GET / within 200ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ta, app, _, opts, _, _ := sbApp(t, nil)
			ta.setStartMode(func(int) string { return tt.mode })
			opts.ReadyTimeout = 200 * time.Millisecond
			var starts atomic.Int32
			opts.OnHandler = func(ev HandlerEvent) {
				if ev.Kind == HandlerStarted {
					starts.Add(1)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitTime)
			defer cancel()
			err := New(app, opts).Run(ctx)
			if !errors.Is(err, errGaveUp) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v, want the handler given up on with %q", err, tt.want)
			}
			if starts.Load() != startAttempts {
				t.Errorf("%d starts, want %d", starts.Load(), startAttempts)
			}
		})
	}
}

func TestMaxConcurrentCalls(t *testing.T) {
	const limit, total = 3, 10
	ta, app, fake, opts, _, _ := sbApp(t, map[string]any{"extensions": map[string]any{"serviceBus": map[string]any{"maxConcurrentCalls": limit}}})
	got := make(invocations, total)
	opts.OnInvocation = func(inv Invocation) { got <- inv }
	var now, peak atomic.Int32
	release := make(chan struct{})
	arrived := make(chan struct{}, total)
	ta.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			return
		}
		n := now.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		arrived <- struct{}{}
		<-release
		now.Add(-1)
		ta.ok(w, r)
	})
	for i := range total {
		fake.send(newMessage(string(rune('a'+i)), "{}"))
	}
	startHost(t, app, opts)
	for range limit {
		select {
		case <-arrived:
		case <-time.After(waitTime):
			t.Fatal("the first invocations did not arrive")
		}
	}
	select {
	case <-arrived:
		t.Fatalf("a %dth invocation started while %d were in flight", limit+1, limit)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	for range total {
		if inv := got.next(t); inv.Outcome != Completed {
			t.Errorf("outcome %s: %v", inv.Outcome, inv.Err)
		}
	}
	if peak.Load() != limit {
		t.Errorf("peak concurrency %d, want %d", peak.Load(), limit)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	for _, n := range fake.asked {
		if n < 1 || n > limit {
			t.Errorf("ReceiveMessages asked for %d messages; the limit is %d", n, limit)
		}
	}
}

func TestLockRenewal(t *testing.T) {
	ta, app, fake, opts, _, clock := sbApp(t, map[string]any{"extensions": map[string]any{"serviceBus": map[string]any{"maxAutoLockRenewalDuration": "00:02:00"}}})
	got := make(invocations, 1)
	opts.OnInvocation = func(inv Invocation) { got <- inv }
	release := make(chan struct{})
	ta.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			return
		}
		<-release
		ta.ok(w, r)
	})
	startHost(t, app, opts)
	msg := newMessage("long", "{}")
	fake.send(msg) // locked for 1 min from t0

	// Renewals come at half the remaining lock: +30s, +60s, +90s, +120s;
	// the next would fall after maxAutoLockRenewalDuration (2 min).
	for i, want := range []time.Duration{30, 60, 90, 120} {
		clock.waitForWaiters(t, 1)
		clock.Advance(30 * time.Second)
		select {
		case s := <-fake.ops:
			if s.op != "renew" || !s.at.Equal(t0.Add(want*time.Second)) {
				t.Fatalf("renewal %d: %s at %s, want renew at t0+%ds", i, s.op, s.at.Sub(t0), want)
			}
		case <-time.After(waitTime):
			t.Fatalf("renewal %d did not happen", i)
		}
	}
	if want := t0.Add(180 * time.Second); !msg.LockedUntil.Equal(want) {
		t.Errorf("LockedUntil = %s, want %s", msg.LockedUntil, want)
	}
	clock.Advance(time.Hour)
	select {
	case s := <-fake.ops:
		t.Fatalf("%s after maxAutoLockRenewalDuration", s.op)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if inv := got.next(t); inv.Outcome != Completed {
		t.Fatalf("outcome %s: %v", inv.Outcome, inv.Err)
	}
}

func TestLockLostStopsRenewal(t *testing.T) {
	ta, app, fake, opts, lb, clock := sbApp(t, nil)
	got := make(invocations, 1)
	opts.OnInvocation = func(inv Invocation) { got <- inv }
	release := make(chan struct{})
	ta.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			return
		}
		<-release
		ta.ok(w, r)
	})
	fake.mu.Lock()
	fake.renewErr = &azservicebus.Error{Code: azservicebus.CodeLockLost}
	fake.mu.Unlock()
	startHost(t, app, opts)
	fake.send(newMessage("lost", "{}"))
	clock.waitForWaiters(t, 1)
	clock.Advance(30 * time.Second)
	deadline := time.Now().Add(waitTime)
	for len(lb.records("message lock lost; the message will be redelivered")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("lock loss was not logged")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	got.next(t)
}

func TestGracefulStopLetsInFlightInvocationsFinish(t *testing.T) {
	ta, app, fake, opts, _, _ := sbApp(t, nil)
	got := make(invocations, 1)
	opts.OnInvocation = func(inv Invocation) { got <- inv }
	arrived, release := make(chan struct{}), make(chan struct{})
	ta.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			return
		}
		close(arrived)
		<-release
		ta.ok(w, r)
	})
	r := startHost(t, app, opts)
	fake.send(newMessage("inflight", "{}"))
	<-arrived
	stopped := make(chan error, 1)
	go func() { stopped <- r.stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) with an invocation in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if inv := got.next(t); inv.Outcome != Completed {
		t.Errorf("outcome %s: %v", inv.Outcome, inv.Err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if !fake.closed {
		t.Error("receiver not closed")
	}
}

func TestStopTimeoutAbandonsWhatIsStillRunning(t *testing.T) {
	ta, app, fake, opts, _, _ := sbApp(t, nil)
	opts.StopTimeout = 100 * time.Millisecond
	got := make(invocations, 1)
	opts.OnInvocation = func(inv Invocation) { got <- inv }
	arrived := make(chan struct{})
	var once sync.Once
	ta.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			return
		}
		_, _ = io.Copy(io.Discard, r.Body) // net/http notices a gone client only after the body is read
		once.Do(func() { close(arrived) })
		<-r.Context().Done()
	})
	r := startHost(t, app, opts)
	fake.send(newMessage("stuck", "{}"))
	<-arrived
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if inv := got.next(t); inv.Outcome != Abandoned {
		t.Errorf("outcome %s, want abandoned", inv.Outcome)
	}
}
