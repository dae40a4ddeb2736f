package registrar

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

// env is a Service over fakes, with a manual clock and a captured JSON log.
type env struct {
	svc   *Service
	dir   *fakeDirectory
	store *fakeStore
	pub   *recordingPublisher
	clock *clock
	logs  *bytes.Buffer
}

func newEnv(tb testing.TB, tweak func(*Options)) *env {
	tb.Helper()
	c := &clock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	e := &env{
		dir: newFakeDirectory(c.Now), store: newFakeStore(c.Now), pub: &recordingPublisher{},
		clock: c, logs: &bytes.Buffer{},
	}
	opts := &Options{
		TenantID: "tenant-1", Now: c.Now, Sleep: c.Sleep,
		Jitter: func(n time.Duration) time.Duration { return n / 2 },
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tweak != nil {
		tweak(opts)
	}
	e.svc = New(e.dir, e.store, e.pub, opts)
	tb.Cleanup(func() { e.assertNoSecretPrinted(tb) })
	return e
}

// assertNoSecretPrinted fails if any secret the directory ever issued appears in the logs or in
// a published event.
func (e *env) assertNoSecretPrinted(tb testing.TB) {
	tb.Helper()
	var events bytes.Buffer
	for _, ev := range e.pub.events {
		fmt.Fprintf(&events, "%+v %#v\n", ev, ev)
	}
	for keyID, text := range e.dir.secrets {
		if strings.Contains(e.logs.String(), text) || strings.Contains(events.String(), text) {
			tb.Errorf("secret text of keyId %s was printed", keyID)
		}
	}
}

func request(clientName string, extra ...string) []byte {
	fields := append([]string{`"requestId":"req-` + clientName + `"`, `"clientName":"` + clientName + `"`}, extra...)
	return []byte("{" + strings.Join(fields, ",") + "}")
}

// register delivers a registration request as the CLI sends one: MessageId = requestId.
func (e *env) register(tb testing.TB, body []byte) Outcome {
	tb.Helper()
	var req struct{ RequestID string }
	_ = json.Unmarshal(body, &req)
	out, err := e.svc.Register(context.Background(), body, Delivery{MessageID: req.RequestID, DeliveryCount: 1})
	if err != nil {
		tb.Fatalf("Register: %v", err)
	}
	return out
}

func TestRegisterNewClient(t *testing.T) {
	e := newEnv(t, nil)
	out := e.register(t, request("lab-sync", `"secret":{"lifetimeDays":30}`, `"redirectUris":["https://lab.example/cb"]`))

	app := e.dir.app("appreg-lab-sync")
	if !app.Managed() || app.ClientName() != "lab-sync" || app.DisplayName != "lab-sync" {
		t.Fatalf("app = %+v", app)
	}
	if len(app.Passwords) != 1 {
		t.Fatalf("passwords = %d, want 1", len(app.Passwords))
	}
	pw := app.Passwords[0]
	if got, want := pw.End.Sub(pw.Start), 30*24*time.Hour; got != want {
		t.Errorf("password lifetime = %v, want %v", got, want)
	}
	if !strings.HasPrefix(pw.DisplayName, PasswordDisplayPrefix) {
		t.Errorf("password displayName %q lacks the appreg prefix", pw.DisplayName)
	}
	if len(e.dir.sps) != 1 {
		t.Errorf("service principals = %d, want 1", len(e.dir.sps))
	}
	name := "lab-sync-client-secret"
	if e.store.count(name) != 1 {
		t.Fatalf("versions = %d, want 1", e.store.count(name))
	}
	if e.store.value(name) != e.dir.secrets[pw.KeyID] {
		t.Error("Key Vault does not hold the password's secret text")
	}
	v, _ := e.store.Latest(context.Background(), name)
	wantTags := map[string]string{
		KVTagManagedBy: "appreg", KVTagClientName: "lab-sync", KVTagAppID: app.AppID, KVTagAppObjectID: app.ObjectID,
		KVTagKeyID: pw.KeyID, KVTagTenantID: "tenant-1", KVTagRequestID: "req-lab-sync", KVTagLifetimeDays: "30",
	}
	for k, want := range wantTags {
		if v.Tags[k] != want {
			t.Errorf("tag %s = %q, want %q", k, v.Tags[k], want)
		}
	}
	if !v.Expires.Equal(pw.End) || !v.NotBefore.Equal(pw.Start) {
		t.Errorf("exp/nbf = %v/%v, want %v/%v", v.Expires, v.NotBefore, pw.End, pw.Start)
	}
	ev := out.Event
	if ev.Type != EventRegistered || ev.MessageID() != "req-lab-sync:registered" || ev.AppID != app.AppID ||
		ev.KeyID != pw.KeyID || ev.SecretURI != v.ID || !ev.ExpiresOn.Equal(v.Expires) || ev.ServicePrincipalID == "" || ev.TenantID != "tenant-1" {
		t.Errorf("event = %+v", ev)
	}
	if len(e.pub.events) != 1 {
		t.Errorf("events = %d, want 1", len(e.pub.events))
	}
}

func TestRegisterThreeTimesAddsOneCredential(t *testing.T) {
	e := newEnv(t, nil)
	body := request("lab-sync")
	var outs []Outcome
	for range 3 {
		outs = append(outs, e.register(t, body))
		e.clock.Advance(time.Minute)
	}
	app := e.dir.app("appreg-lab-sync")
	if len(e.dir.apps) != 1 || len(e.dir.sps) != 1 || len(app.Passwords) != 1 || e.store.count("lab-sync-client-secret") != 1 {
		t.Fatalf("apps=%d sps=%d passwords=%d versions=%d, want 1 each",
			len(e.dir.apps), len(e.dir.sps), len(app.Passwords), e.store.count("lab-sync-client-secret"))
	}
	if outs[0].Reused || !outs[1].Reused || !outs[2].Reused {
		t.Errorf("reused = %v %v %v, want false true true", outs[0].Reused, outs[1].Reused, outs[2].Reused)
	}
	for _, o := range outs[1:] {
		if o.Event.KeyID != outs[0].Event.KeyID || o.Event.SecretURI != outs[0].Event.SecretURI {
			t.Errorf("repeat event %+v differs from first %+v", o.Event, outs[0].Event)
		}
	}
}

// A redelivery read from a replica that does not list the password Key Vault's latest version
// holds yet must wait for it, not add a second one.
func TestRegisterRedeliveryWaitsForTheNewestPasswordToReplicate(t *testing.T) {
	e := newEnv(t, nil)
	first := e.register(t, request("lab-sync"))
	e.clock.Advance(10 * time.Second)
	e.dir.hideNewest = 4
	finds := e.dir.calls["find"]
	again := e.register(t, request("lab-sync"))
	if app := e.dir.app("appreg-lab-sync"); len(app.Passwords) != 1 || e.store.count("lab-sync-client-secret") != 1 {
		t.Fatalf("passwords=%d versions=%d, want 1 each", len(app.Passwords), e.store.count("lab-sync-client-secret"))
	}
	if !again.Reused || again.Event.KeyID != first.Event.KeyID {
		t.Errorf("second outcome %+v, want the first secret reused", again)
	}
	if got := e.dir.calls["find"] - finds; got != 5 {
		t.Errorf("application reads = %d, want 5 (one, then four until a replica lists the password)", got)
	}

	// Past ReplicationTimeout, a missing password is gone, not late: a new one is issued.
	e.clock.Advance(time.Hour)
	e.dir.hideNewest = 1
	third := e.register(t, request("lab-sync"))
	if third.Reused || e.store.count("lab-sync-client-secret") != 2 {
		t.Errorf("reused=%v versions=%d: a version whose password is missing after the replication timeout must be replaced", third.Reused, e.store.count("lab-sync-client-secret"))
	}
}

func TestRegisterChangedRequestUpdatesAppKeepsSecret(t *testing.T) {
	e := newEnv(t, nil)
	first := e.register(t, request("lab-sync"))
	second := e.register(t, request("lab-sync", `"displayName":"Lab Sync (prod)"`, `"redirectUris":["https://lab.example/new"]`, `"notes":"moved"`))
	app := e.dir.app("appreg-lab-sync")
	if app.DisplayName != "Lab Sync (prod)" || app.Notes != "moved" || len(app.RedirectURIs) != 1 || app.RedirectURIs[0] != "https://lab.example/new" {
		t.Errorf("app not updated: %+v", app)
	}
	if !second.Reused || second.Event.KeyID != first.Event.KeyID || len(app.Passwords) != 1 {
		t.Errorf("secret not reused: first %+v second %+v", first.Event, second.Event)
	}
}

func TestRegisterKeepsForeignTags(t *testing.T) {
	e := newEnv(t, nil)
	e.register(t, request("lab-sync"))
	e.dir.mu.Lock()
	a := e.dir.byUnique("appreg-lab-sync")
	a.Tags = append(a.Tags, "cost-center:42")
	e.dir.mu.Unlock()
	e.register(t, request("lab-sync"))
	if got := e.dir.app("appreg-lab-sync").Tags; len(got) != 3 || got[2] != "cost-center:42" {
		t.Errorf("tags = %v", got)
	}
}

// Key Vault holding nothing for a client says it is new, so its app is created without a read
// first; an app that exists all the same (the delivery that created it died before storing its
// secret) is found through the refused create and taken as it is, its foreign tags kept.
func TestRegisterReadsTheAppOnlyWhenNeeded(t *testing.T) {
	e := newEnv(t, nil)
	e.register(t, request("lab-sync"))
	if e.dir.calls["find"] != 0 || e.dir.calls["create"] != 1 {
		t.Errorf("new client: %d reads, %d creates; want 0 and 1", e.dir.calls["find"], e.dir.calls["create"])
	}

	e.dir.mu.Lock()
	a := e.dir.byUnique("appreg-lab-sync")
	a.Tags = append(a.Tags, "cost-center:42")
	e.dir.mu.Unlock()
	e.store.versions = map[string][]storedVersion{} // the secret never reached Key Vault
	out := e.register(t, request("lab-sync"))
	app := e.dir.app("appreg-lab-sync")
	if out.Event.Type != EventRegistered || out.Event.AppObjectID != a.ObjectID {
		t.Fatalf("event %+v, want registered on the existing app %s", out.Event, a.ObjectID)
	}
	if len(e.dir.apps) != 1 || len(app.Passwords) != 2 || e.store.count("lab-sync-client-secret") != 1 {
		t.Errorf("apps=%d passwords=%d versions=%d, want 1, 2 (the first is the orphan sweep's), 1", len(e.dir.apps), len(app.Passwords), e.store.count("lab-sync-client-secret"))
	}
	if !slices.Contains(app.Tags, "cost-center:42") {
		t.Errorf("tags = %v: a foreign tag was dropped", app.Tags)
	}

	// A retry reads first: the try before it may have made the app, and a create refused for a
	// taken name still spends one of Graph's writes.
	r := newEnv(t, nil)
	r.dir.failN["sp"] = []error{&Error{Code: CodeUnavailable, Op: "graph.upsertServicePrincipal", Message: "HTTP 503"}}
	if out := r.register(t, request("lab-sync")); out.Event.Type != EventRegistered {
		t.Fatalf("event %+v, want registered", out.Event)
	}
	if r.dir.calls["create"] != 1 || r.dir.calls["find"] != 1 {
		t.Errorf("after a failed try: %d creates, %d reads; want 1 and 1", r.dir.calls["create"], r.dir.calls["find"])
	}
}

func TestRegisterRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(e *env)
		code  string
	}{
		{"UnmanagedApp", func(e *env) {
			e.dir.apps["x"] = &App{ObjectID: "x", AppID: "y", UniqueName: "appreg-lab-sync", Tags: []string{"team:a"}}
		}, RejectAppNotManaged},
		{"OwnIdentity", func(e *env) {
			e.dir.apps["x"] = &App{ObjectID: "x", AppID: "self-app", UniqueName: "appreg-lab-sync", Tags: []string{TagManaged}}
		}, RejectSelf},
		{"ForeignSecretInVault", func(e *env) {
			e.store.versions["lab-sync-client-secret"] = []storedVersion{{SecretVersion: SecretVersion{ID: "v", Name: "lab-sync-client-secret"}}}
		}, RejectSecretConflict},
		{"SoftDeletedSecretInVault", func(e *env) {
			e.store.deleted = map[string]bool{"lab-sync-client-secret": true}
		}, RejectSecretConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.SelfAppID = "self-app" })
			tt.setup(e)
			out, err := e.svc.Register(context.Background(), request("lab-sync"), Delivery{MessageID: "m", DeliveryCount: 1})
			if err != nil {
				t.Fatalf("Register returned %v; a refusal must complete the message", err)
			}
			if out.Event.Type != EventRejected || len(out.Event.Reasons) != 1 || out.Event.Reasons[0].Code != tt.code {
				t.Fatalf("event = %+v, want rejected %s", out.Event, tt.code)
			}
			if e.dir.calls["add"] != 0 {
				t.Error("a password was added to a refused app")
			}
			// D7: a refusal found after the app and service principal were upserted left both
			// behind, managed but without a secret, and every scan warned about them.
			if n := e.dir.calls["upsert"] + e.dir.calls["sp"]; n != 0 {
				t.Errorf("%d directory writes before the refusal; checks that can refuse must come first", n)
			}
		})
	}
}

func TestRegisterRejectsInvalidRequest(t *testing.T) {
	e := newEnv(t, nil)
	out, err := e.svc.Register(context.Background(), []byte(`{"clientName":"X"}`), Delivery{MessageID: "msg-9", DeliveryCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	if out.Event.Type != EventRejected || out.Event.RequestID != "msg-9" || len(out.Event.Reasons) != 2 {
		t.Fatalf("event = %+v", out.Event)
	}
	if len(e.dir.calls) != 0 {
		t.Errorf("directory was called for an invalid request: %v", e.dir.calls)
	}
}

func TestRegisterWaitsOutReplication(t *testing.T) {
	e := newEnv(t, nil)
	e.dir.spLag = 5
	start := e.clock.Now()
	e.register(t, request("lab-sync"))
	if e.dir.calls["sp"] != 6 {
		t.Errorf("UpsertServicePrincipal calls = %d, want 6", e.dir.calls["sp"])
	}
	if waited := e.clock.Now().Sub(start); waited <= 0 || waited > 3*time.Minute {
		t.Errorf("waited %v", waited)
	}
}

// Near Graph's write limit a new app's service-principal write waits for reads to show the app:
// one sent before it replicated would fail and spend a write another registration needed.
// Below the warning level it goes at once.
func TestRegisterReadsFirstNearTheWriteLimit(t *testing.T) {
	for _, tt := range []struct {
		pressure float64
		reads    int
	}{{0, 0}, {0.79, 0}, {0.8, pressedVisibleReads}, {1, pressedVisibleReads}} {
		t.Run(fmt.Sprint(tt.pressure), func(t *testing.T) {
			e := newEnv(t, nil)
			e.dir.pressure = tt.pressure
			e.register(t, request("lab-sync"))
			if e.dir.calls["find"] != tt.reads || e.dir.calls["sp"] != 1 {
				t.Errorf("reads %d, service-principal writes %d; want %d and 1", e.dir.calls["find"], e.dir.calls["sp"], tt.reads)
			}
		})
	}
}

func TestRegisterReplicationGivesUpAtTheDeliveryWindow(t *testing.T) {
	// A 10-minute budget over 10 deliveries: each delivery retries for a minute, then hands the
	// message back; no inner retry (ReplicationTimeout is longer) outlives the window.
	e := newEnv(t, func(o *Options) { o.RetryBudget = 10 * time.Minute; o.ReplicationTimeout = 3 * time.Minute })
	e.dir.spLag = 1000
	start := e.clock.Now()
	_, err := e.svc.Register(context.Background(), request("lab-sync"), Delivery{MessageID: "m", DeliveryCount: 1, EnqueuedTime: start})
	if ErrorCode(err) != CodeReplicating {
		t.Fatalf("err = %v, want a replicating error so the message is redelivered", err)
	}
	if waited := e.clock.Now().Sub(start); waited > time.Minute || waited < 30*time.Second {
		t.Errorf("waited %v; want about the 1m window", waited)
	}
	if len(e.pub.events) != 0 {
		t.Errorf("events on a non-final failure: %+v", e.pub.events)
	}
}

// The retry budget is spread over the deliveries: a request that keeps failing is dead-lettered
// when the budget is spent, never before it.
func TestRetryBudgetSpansTheDeliveries(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RetryBudget = 30 * time.Minute })
	forbidden := &Error{Code: CodeForbidden, Op: "graph.upsertApplication", Message: "HTTP 403 Authorization_RequestDenied"}
	e.dir.failN["upsert"] = slices.Repeat([]error{forbidden}, 100000)
	enqueued := e.clock.Now()
	var err error
	for n := 1; n <= 10; n++ {
		_, err = e.svc.Register(context.Background(), request("lab-sync"), Delivery{MessageID: "m", DeliveryCount: n, EnqueuedTime: enqueued})
		if err == nil {
			t.Fatalf("delivery %d succeeded", n)
		}
		if n < 10 && len(e.pub.ofType(EventFailed)) != 0 {
			t.Fatalf("failed announced on delivery %d", n)
		}
	}
	// Not a backoff early: the last try of the last delivery lands on the budget's end.
	if spent := e.clock.Now().Sub(enqueued); spent < 30*time.Minute || spent > 30*time.Minute+time.Second {
		t.Errorf("gave up after %v; want the 30m budget, not less", spent)
	}
	failed := e.pub.ofType(EventFailed)
	if len(failed) != 1 || !strings.Contains(failed[0].Reasons[0].Message, "Application.ReadWrite.OwnedBy") {
		t.Fatalf("failed events = %+v; want one naming the missing permission", failed)
	}
}

// The last delivery, arriving with ten seconds of budget left, keeps trying until the budget's
// end rather than giving up when its next backoff would overshoot it.
func TestLastDeliveryRetriesToTheBudgetsEnd(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RetryBudget = 30 * time.Minute })
	forbidden := &Error{Code: CodeForbidden, Op: "graph.upsertApplication", Message: "HTTP 403 Authorization_RequestDenied"}
	e.dir.failN["upsert"] = slices.Repeat([]error{forbidden}, 100000)
	enqueued := e.clock.Now().Add(-30*time.Minute + 10*time.Second)
	if _, err := e.svc.Register(context.Background(), request("lab-sync"), Delivery{MessageID: "m", DeliveryCount: 10, EnqueuedTime: enqueued}); err == nil {
		t.Fatal("the last delivery succeeded")
	}
	if spent := e.clock.Now().Sub(enqueued); spent < 30*time.Minute {
		t.Errorf("gave up %v before the budget's end", 30*time.Minute-spent)
	}
	if n := len(e.pub.ofType(EventFailed)); n != 1 {
		t.Errorf("failed events = %d, want 1", n)
	}
}

func TestRegisterStoreFailureCompensates(t *testing.T) {
	unavailable := &Error{Code: CodeUnavailable, Op: "keyvault.set", Message: "503"}
	t.Run("Transient", func(t *testing.T) {
		// Three failed writes: the password is removed again, and the next try in the same
		// delivery converges on one password and one version.
		e := newEnv(t, nil)
		e.store.failPut = []error{unavailable, unavailable, unavailable}
		e.register(t, request("lab-sync"))
		if e.store.puts != 4 || e.dir.calls["remove"] != 1 {
			t.Errorf("Put attempts = %d, removals = %d; want 3 failed puts, a compensation, then 1 put", e.store.puts, e.dir.calls["remove"])
		}
		if n, v := len(e.dir.app("appreg-lab-sync").Passwords), e.store.count("lab-sync-client-secret"); n != 1 || v != 1 {
			t.Errorf("passwords %d, versions %d; want 1 and 1", n, v)
		}
	})
	t.Run("Final", func(t *testing.T) {
		e := newEnv(t, nil)
		e.store.failPut = slices.Repeat([]error{unavailable}, 100000)
		_, err := e.svc.Register(context.Background(), request("lab-sync"), Delivery{MessageID: "m", DeliveryCount: 10, EnqueuedTime: e.clock.Now()})
		if !errors.Is(err, unavailable) {
			t.Fatalf("err = %v, want the store error", err)
		}
		if n := len(e.dir.app("appreg-lab-sync").Passwords); n != 0 {
			t.Errorf("passwords left = %d, want 0 after compensation", n)
		}
		failed := e.pub.ofType(EventFailed)
		if len(failed) != 1 || failed[0].RequestID != "req-lab-sync" || failed[0].Reasons[0].Code != string(CodeUnavailable) {
			t.Fatalf("failed events = %+v", failed)
		}
		// The next delivery, with Key Vault healthy again, converges.
		e.store.failPut = nil
		e.register(t, request("lab-sync"))
		if n := len(e.dir.app("appreg-lab-sync").Passwords); n != 1 {
			t.Errorf("passwords after recovery = %d, want 1", n)
		}
	})
}

func TestRegisterSoftDeletedSecretIsRejected(t *testing.T) {
	e := newEnv(t, nil)
	e.store.failPut = []error{&Error{Code: CodeConflict, Op: "keyvault.set", Message: "ObjectIsDeletedButRecoverable"}}
	out, err := e.svc.Register(context.Background(), request("lab-sync"), Delivery{MessageID: "m", DeliveryCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	if out.Event.Type != EventRejected || out.Event.Reasons[0].Code != RejectSecretConflict {
		t.Fatalf("event = %+v", out.Event)
	}
	if e.store.puts != 1 {
		t.Errorf("Put attempts = %d; a conflict must not be retried", e.store.puts)
	}
	if n := len(e.dir.app("appreg-lab-sync").Passwords); n != 0 {
		t.Errorf("passwords left = %d, want 0", n)
	}
}

func TestRegisterPublishFailureRetries(t *testing.T) {
	e := newEnv(t, nil)
	e.pub.fail = &Error{Code: CodeUnavailable, Op: "servicebus.send"}
	if _, err := e.svc.Register(context.Background(), request("lab-sync"), Delivery{MessageID: "m", DeliveryCount: 1}); err == nil {
		t.Fatal("Register succeeded although the event was not published")
	}
	e.pub.fail = nil
	out := e.register(t, request("lab-sync"))
	if !out.Reused || len(e.dir.app("appreg-lab-sync").Passwords) != 1 {
		t.Errorf("redelivery after a publish failure added a credential: %+v", out)
	}
}

func TestSecretValueNeverPrints(t *testing.T) {
	s := NewSecretValue("hunter2-very-secret")
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "s", s, "np", NewPassword{Secret: s})
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x %X %d", s, s, s, s, s, s, s, s),
		fmt.Sprintf("%+v %#v", NewPassword{Secret: s}, NewPassword{Secret: s}), buf.String(),
	} {
		if strings.Contains(out, "hunter2") || strings.Contains(out, "68756e74657232") {
			t.Errorf("secret printed: %s", out)
		}
	}
	if s.Reveal() != "hunter2-very-secret" {
		t.Error("Reveal lost the value")
	}
}

func TestConcurrentDeliveriesAddOneCredential(t *testing.T) {
	e := newEnv(t, nil)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := e.svc.Register(context.Background(), request("lab-sync"), Delivery{MessageID: "m", DeliveryCount: 1})
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.dir.app("appreg-lab-sync").Passwords); n != 1 || e.store.count("lab-sync-client-secret") != 1 {
		t.Errorf("passwords = %d, versions = %d, want 1 each", n, e.store.count("lab-sync-client-secret"))
	}
}

func TestNewSecretsAreVerifiedBeforeTheyAreAnnounced(t *testing.T) {
	tests := []struct {
		name         string
		lag          int
		flaps        []bool
		fail         error
		timeout      time.Duration
		wantVerified bool
		wantCalls    int
	}{
		{"SignsInAtOnce", 0, nil, nil, time.Minute, true, 8},
		{"AfterReplication", 4, nil, nil, time.Minute, true, 4 + 8},
		// Accepted, refused, accepted: only eight in a row count.
		{"FlapsThenSettles", 0, []bool{true, true, false, true, false}, nil, time.Minute, true, 5 + 8},
		{"NotInTime", 1000, nil, nil, 10 * time.Second, false, -1},
		// A verify scope Entra does not know: no wait will help, so one try.
		{"WrongScope", 0, nil, &Error{Code: CodeInvalid, Op: "entra.verify", Message: "AADSTS500011"}, time.Minute, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v *fakeVerifier
			e := newEnv(t, func(o *Options) { o.VerifyTimeout = tt.timeout })
			v = &fakeVerifier{dir: e.dir, lag: tt.lag, flaps: tt.flaps, fail: tt.fail}
			e.svc.opt.Verifier = v
			out := e.register(t, request("lab-sync"))
			if out.Event.Verified == nil || *out.Event.Verified != tt.wantVerified {
				t.Fatalf("verified = %v, want %v", out.Event.Verified, tt.wantVerified)
			}
			if tt.wantCalls >= 0 && v.calls != tt.wantCalls {
				t.Errorf("sign-in attempts = %d, want %d", v.calls, tt.wantCalls)
			}
			// The secret is stored and announced either way; a redelivery reuses it unverified.
			if e.store.count("lab-sync-client-secret") != 1 {
				t.Errorf("versions = %d", e.store.count("lab-sync-client-secret"))
			}
			again := e.register(t, request("lab-sync"))
			if !again.Reused || again.Event.Verified != nil {
				t.Errorf("redelivery: reused %v verified %v", again.Reused, again.Event.Verified)
			}
		})
	}
}
