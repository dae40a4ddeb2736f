package funchost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

// waitTime bounds every wait in these tests; nothing should come near it.
const waitTime = 10 * time.Second

// fakeClock is a Clock that moves only when told to.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	added   chan struct{} // closed and replaced when a waiter is added
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, added: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	close(c.added)
	c.added = make(chan struct{})
	return ch
}

// Advance moves the clock and fires every waiter that is due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// waitForWaiters blocks until at least n goroutines wait on the clock, so an
// Advance cannot slip in before the code under test has armed its timer.
func (c *fakeClock) waitForWaiters(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.After(waitTime)
	for {
		c.mu.Lock()
		have, added := len(c.waiters), c.added
		c.mu.Unlock()
		if have >= n {
			return
		}
		select {
		case <-added:
		case <-deadline:
			tb.Fatalf("fake clock: %d waiters after %s, want %d", have, waitTime, n)
		}
	}
}

// settlement records what the host did with a message.
type settlement struct {
	op  string // "complete", "abandon" or "renew"
	msg *azservicebus.ReceivedMessage
	at  time.Time
}

// fakeReceiver is a Receiver backed by a channel. With redeliver set,
// abandoned messages come back with DeliveryCount+1, as the broker
// redelivers them.
type fakeReceiver struct {
	clock    Clock
	lock     time.Duration
	incoming chan *azservicebus.ReceivedMessage
	ops      chan settlement

	redeliver bool // set before use

	mu       sync.Mutex
	renewErr error
	asked    []int // maxMessages of each ReceiveMessages call
	closed   bool
}

func newFakeReceiver(clock Clock) *fakeReceiver {
	return &fakeReceiver{
		clock:    clock,
		lock:     time.Minute,
		incoming: make(chan *azservicebus.ReceivedMessage, 100),
		ops:      make(chan settlement, 1000),
	}
}

func (f *fakeReceiver) send(msg *azservicebus.ReceivedMessage) {
	if msg.DeliveryCount == 0 {
		msg.DeliveryCount = 1
	}
	until := f.clock.Now().Add(f.lock)
	msg.LockedUntil = &until
	f.incoming <- msg
}

func (f *fakeReceiver) ReceiveMessages(ctx context.Context, n int, _ *azservicebus.ReceiveMessagesOptions) ([]*azservicebus.ReceivedMessage, error) {
	f.mu.Lock()
	f.asked = append(f.asked, n)
	f.mu.Unlock()
	var out []*azservicebus.ReceivedMessage
	select {
	case m := <-f.incoming:
		out = append(out, m)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for len(out) < n {
		select {
		case m := <-f.incoming:
			out = append(out, m)
		default:
			return out, nil
		}
	}
	return out, nil
}

func (f *fakeReceiver) CompleteMessage(_ context.Context, m *azservicebus.ReceivedMessage, _ *azservicebus.CompleteMessageOptions) error {
	f.ops <- settlement{"complete", m, f.clock.Now()}
	return nil
}

func (f *fakeReceiver) AbandonMessage(_ context.Context, m *azservicebus.ReceivedMessage, _ *azservicebus.AbandonMessageOptions) error {
	f.ops <- settlement{"abandon", m, f.clock.Now()}
	if f.redeliver {
		again := *m
		again.DeliveryCount++
		f.send(&again)
	}
	return nil
}

func (f *fakeReceiver) RenewMessageLock(_ context.Context, m *azservicebus.ReceivedMessage, _ *azservicebus.RenewMessageLockOptions) error {
	f.mu.Lock()
	err := f.renewErr
	f.mu.Unlock()
	if err != nil {
		return err
	}
	until := f.clock.Now().Add(f.lock)
	m.LockedUntil = &until
	f.ops <- settlement{"renew", m, f.clock.Now()}
	return nil
}

func (f *fakeReceiver) Close(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// next returns the next settlement other than a renewal.
func (f *fakeReceiver) next(tb testing.TB) settlement {
	tb.Helper()
	for {
		select {
		case s := <-f.ops:
			if s.op != "renew" {
				return s
			}
		case <-time.After(waitTime):
			tb.Fatal("no complete or abandon")
		}
	}
}

// recorded is one request the handler received.
type recorded struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// testApp is a staged app whose handler is the test binary, proxying to
// an upstream server in the test.
type testApp struct {
	dir      string
	upstream *httptest.Server
	started  chan startupReport
	requests chan recorded

	mu        sync.Mutex
	handle    http.HandlerFunc
	startMode func(n int) string // X-Test-Start for the n-th start (1-based)
	starts    int
}

type appSpec struct {
	host      map[string]any    // merged into host.json
	functions map[string]string // name -> function.json
	settings  map[string]string
}

func newTestApp(tb testing.TB, spec appSpec) (*testApp, map[string]string) {
	tb.Helper()
	ta := &testApp{
		dir:      tb.TempDir(),
		started:  make(chan startupReport, 20),
		requests: make(chan recorded, 100),
	}
	ta.handle = ta.ok
	ta.upstream = httptest.NewServer(http.HandlerFunc(ta.serve))
	tb.Cleanup(ta.upstream.Close)

	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	host := map[string]any{
		"version": "2.0",
		"customHandler": map[string]any{
			"description": map[string]any{"defaultExecutablePath": exe},
		},
	}
	for k, v := range spec.host {
		host[k] = v
	}
	writeJSON(tb, filepath.Join(ta.dir, "host.json"), host)
	for name, fj := range spec.functions {
		writeFile(tb, filepath.Join(ta.dir, name, "function.json"), fj)
	}
	settings := map[string]string{
		"FUNCHOST_TEST_HANDLER":  "1",
		"FUNCHOST_TEST_UPSTREAM": ta.upstream.URL,
	}
	for k, v := range spec.settings {
		settings[k] = v
	}
	return ta, settings
}

func (ta *testApp) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_started" {
		var rep startupReport
		_ = json.NewDecoder(r.Body).Decode(&rep)
		ta.mu.Lock()
		ta.starts++
		n, mode := ta.starts, ta.startMode
		ta.mu.Unlock()
		if mode != nil {
			w.Header().Set("X-Test-Start", mode(n))
		}
		ta.started <- rep
		return
	}
	ta.mu.Lock()
	h := ta.handle
	ta.mu.Unlock()
	h(w, r)
}

func (ta *testApp) setStartMode(mode func(n int) string) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	ta.startMode = mode
}

func (ta *testApp) setHandler(h http.HandlerFunc) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	ta.handle = h
}

// record captures r for the test.
func (ta *testApp) record(r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ta.requests <- recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
}

// ok records the request and answers as a well-behaved handler.
func (ta *testApp) ok(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/" {
		w.WriteHeader(http.StatusOK)
		return
	}
	ta.record(r)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"Outputs":{},"Logs":["handled it"],"ReturnValue":null}`)
}

func (ta *testApp) nextRequest(tb testing.TB) recorded {
	tb.Helper()
	select {
	case r := <-ta.requests:
		return r
	case <-time.After(waitTime):
		tb.Fatal("handler received no request")
		return recorded{}
	}
}

func (ta *testApp) nextStart(tb testing.TB) startupReport {
	tb.Helper()
	select {
	case r := <-ta.started:
		return r
	case <-time.After(waitTime):
		tb.Fatal("handler did not start")
		return startupReport{}
	}
}

func writeJSON(tb testing.TB, path string, v any) {
	tb.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	writeFile(tb, path, string(b))
}

func writeFile(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// logBuffer collects the host's JSON log lines; a failing test prints them.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// records returns the log records whose msg is msg.
func (l *logBuffer) records(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range bytes.Split([]byte(l.String()), []byte("\n")) {
		var rec map[string]any
		if json.Unmarshal(line, &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func testLogger(tb testing.TB) (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("host log:\n%s", lb.String())
		}
	})
	return slog.New(slog.NewJSONHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// fastOptions are Options for tests: quick polling and restarts.
func fastOptions(tb testing.TB) (*Options, *logBuffer) {
	log, lb := testLogger(tb)
	return &Options{
		Logger:            log,
		ReadyTimeout:      5 * time.Second,
		ReadyPollInterval: 10 * time.Millisecond,
		RestartDelay:      10 * time.Millisecond,
		MaxRestartDelay:   50 * time.Millisecond,
		StopTimeout:       5 * time.Second,
	}, lb
}

// running is a Host started by startHost.
type running struct {
	host *Host
	stop func() error // cancels Run and returns its error
}

func startHost(tb testing.TB, app *App, opts *Options) *running {
	tb.Helper()
	h := New(app, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(waitTime):
				runErr = errors.New("Run did not return after cancel")
			}
		})
		return runErr
	}
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	return &running{host: h, stop: stop}
}

// invocations collects OnInvocation events.
type invocations chan Invocation

func (c invocations) next(tb testing.TB) Invocation {
	tb.Helper()
	select {
	case inv := <-c:
		return inv
	case <-time.After(waitTime):
		tb.Fatal("no invocation finished")
		return Invocation{}
	}
}

func ptr[T any](v T) *T { return &v }
