package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"appreg/internal/testutil"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"appreg/emulator/azemu"
	"appreg/internal/azauth"
	"appreg/internal/config"
	"appreg/internal/registrar"
)

// These tests run the handler's HTTP server in-process with the production wiring — azidentity,
// msgraph-sdk-go, azsecrets and azservicebus, unmodified — against the local Azure over real
// sockets, and post the envelopes the Functions host posts. Only the clock and the backoff are
// steered, through the wiring hooks.

// offsetClock is the wall clock plus an offset tests move forward, so time keeps flowing (SDK
// timeouts, emulator replication lag) while a test jumps weeks ahead.
type offsetClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *offsetClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// secretTap sees every addPassword response on the handler's wire and keeps the secretText, so
// the leak scan knows every secret ever issued, including ones compensation removed.
type secretTap struct {
	base    http.RoundTripper
	mu      sync.Mutex
	secrets []string
}

func (t *secretTap) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.URL.Path, "/addPassword") || res.StatusCode != http.StatusOK {
		return res, err
	}
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(raw))
	plain := raw
	if res.Header.Get("Content-Encoding") == "gzip" {
		if zr, err := gzip.NewReader(bytes.NewReader(raw)); err == nil {
			plain, _ = io.ReadAll(zr)
		}
	}
	var body struct{ SecretText string }
	if json.Unmarshal(plain, &body) == nil && body.SecretText != "" {
		t.mu.Lock()
		t.secrets = append(t.secrets, body.SecretText)
		t.mu.Unlock()
	}
	return res, nil
}

type harness struct {
	t      testing.TB
	emu    *azemu.Server
	clock  *offsetClock
	env    map[string]string
	url    string
	http   *http.Client
	logs   *testutil.Buffer // the handler's and the emulators' logs
	tap    *secretTap
	sb     *azservicebus.Client
	events *azservicebus.Receiver
	// commandQueue is where the scheduler sends its jobs, one session per client.
	commandQueue string
	checks       []check          // the handler's preflight checks
	printed      *testutil.Buffer // every response body and every event or job body seen
	seen         []registrar.Event
}

func newHarness(t testing.TB, settings map[string]string) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test against the local Azure")
	}
	h := &harness{t: t, clock: &offsetClock{}, logs: &testutil.Buffer{}, printed: &testutil.Buffer{}}
	emuLog := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// Tests meet Azure as harsh as it is; benchmarks measure appreg's own cost, which
	// replication lag would bury under waits that are Azure's.
	profile := azemu.Realistic
	if _, bench := t.(*testing.B); bench {
		profile = azemu.Kind
	}
	emu, err := azemu.NewServer(&azemu.Options{Now: h.clock.Now, KeyVaultDeleteLag: -1, Logger: emuLog, Profile: profile})
	if err != nil {
		t.Fatal(err)
	}
	h.emu = emu
	dir := t.TempDir()
	if err := emu.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	ep := emu.Endpoints()
	h.env = map[string]string{
		config.EnvTenantID: ep.TenantID, config.EnvClientID: ep.Clients[0].ClientID, config.EnvClientSecret: ep.Clients[0].ClientSecret,
		config.EnvAuthorityHost: ep.AuthorityHost, config.EnvGraphBaseURL: ep.GraphBaseURL, config.EnvKeyVaultURL: ep.KeyVaultURL,
		config.EnvCAFile: filepath.Join(dir, "ca.pem"), config.EnvSBConnection: ep.ServiceBusConnectionString,
		config.EnvEditSpacing: "1ms", config.EnvReplicationTimeout: "20s", config.EnvLogLevel: "debug",
		// A minute's budget: enough to wait out the emulated replication lag in one delivery,
		// short enough that a test of a failure that outlives it still finishes in seconds.
		config.EnvRetryBudget: "60s", config.EnvAttemptTimeout: "20s",
		// FHIR role assignments through the local Resource Manager, on its FHIR service.
		config.EnvARMEndpoint: ep.ARMEndpoint, config.EnvARMAudience: ep.ARMAudience,
		config.EnvFHIRServices: ep.FHIRSetting(), config.EnvFHIRDefaultService: ep.FHIRServices[0].ID,
	}
	for k, v := range settings {
		h.env[k] = v
	}
	cfg, err := config.Load(func(k string) string { return h.env[k] }, config.Need{Tenant: true, Vault: true, ServiceBus: true})
	if err != nil {
		t.Fatal(err)
	}
	base, err := azauth.NewHTTPClient(cfg.CAFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.tap = &secretTap{base: base.Transport}
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	app, err := wire(ctx, cfg, log, &wiring{
		HTTPClient:    &http.Client{Transport: h.tap},
		KeyVaultRetry: policy.RetryOptions{MaxRetries: 2, RetryDelay: 5 * time.Millisecond, MaxRetryDelay: 20 * time.Millisecond},
		Registrar: func(o *registrar.Options) {
			o.Now = h.clock.Now
			o.RetryBase = 20 * time.Millisecond
			o.RetryMax = 200 * time.Millisecond
			o.VerifyInterval = 10 * time.Millisecond // eight sign-ins in a row, quickly
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- serve(ctx, ln, app.svc, log) }()
	h.checks = app.checks
	h.url = "http://" + ln.Addr().String()
	h.http = &http.Client{Timeout: time.Minute}

	if h.sb, err = azservicebus.NewClientFromConnectionString(ep.ServiceBusConnectionString, nil); err != nil {
		t.Fatal(err)
	}
	if h.events, err = h.sb.NewReceiverForSubscription(cfg.EventsTopic, "appreg", nil); err != nil {
		t.Fatal(err)
	}
	h.commandQueue = cfg.CommandQueue
	t.Cleanup(func() {
		h.checkSecretsWorkAndNeverLeak()
		cancel()
		<-served
		app.close()
		_ = h.sb.Close(context.Background())
		emu.Close()
		if t.Failed() {
			t.Logf("logs:\n%s", tail(h.logs.String(), 60))
		}
	})
	return h
}

// command posts what the Functions host posts for one message of the command queue: the body
// JSON-encoded twice, metadata strings encoded twice, numbers as strings, and the session that
// a sender following the README would set (the body's clientName).
func (h *harness) command(kind string, body []byte, messageID string, deliveryCount int) (int, invokeResult) {
	h.t.Helper()
	var b struct{ ClientName string }
	_ = json.Unmarshal(body, &b)
	return h.commandIn(kind, body, messageID, b.ClientName, deliveryCount)
}

func (h *harness) commandIn(kind string, body []byte, messageID, sessionID string, deliveryCount int) (int, invokeResult) {
	h.t.Helper()
	twice := func(s string) string {
		once, _ := json.Marshal(s)
		return string(once)
	}
	env := map[string]any{
		"Data": map[string]any{"command": twice(string(body))},
		"Metadata": map[string]any{
			"DeliveryCount": fmt.Sprint(deliveryCount), "MessageId": twice(messageID), "ContentType": twice("application/json"),
			"Subject": twice(kind), "Label": twice(kind), "SessionId": twice(sessionID),
			"SequenceNumber": "1", "EnqueuedTimeUtc": time.Now().UTC().Format("2006-01-02T15:04:05"),
			"MessageReceiver": map[string]any{}, "MessageActions": map[string]any{}, "MessageSession": map[string]any{},
			"sys": map[string]any{"MethodName": "ClientCommand", "UtcNow": time.Now().UTC().Format(time.RFC3339Nano), "RandGuid": "00000000-0000-4000-8000-000000000000"},
		},
	}
	return h.post("ClientCommand", env)
}

func (h *harness) timer() (int, invokeResult) {
	h.t.Helper()
	return h.post("ScheduleRotations", map[string]any{
		"Data":     map[string]any{"timer": map[string]any{"Schedule": map[string]any{"AdjustForDST": true}, "ScheduleStatus": nil, "IsPastDue": false}},
		"Metadata": map[string]any{"sys": map[string]any{"MethodName": "ScheduleRotations", "UtcNow": time.Now().UTC().Format(time.RFC3339Nano)}},
	})
}

// scheduleAndRun fires the timer and delivers every job it sent, as the host would.
func (h *harness) scheduleAndRun() {
	h.t.Helper()
	// The tests move the clock on by days between runs; Graph settled long before, though its
	// replication runs on the wall clock.
	h.emu.Graph.Replicate()
	if status, out := h.timer(); status != http.StatusOK {
		h.t.Fatalf("ScheduleRotations = %d %v", status, out.Logs)
	}
	for {
		jobs := h.receiveSession(300 * time.Millisecond)
		if len(jobs) == 0 {
			return
		}
		for _, m := range jobs {
			if status, out := h.runJob(m, 1); status != http.StatusOK {
				h.t.Fatalf("job %s = %d %v", m.MessageID, status, out.Logs)
			}
		}
	}
}

func (h *harness) post(function string, env any) (int, invokeResult) {
	h.t.Helper()
	b, _ := json.Marshal(env)
	req, _ := http.NewRequest(http.MethodPost, h.url+"/"+function, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("X-Azure-Functions-InvocationId", "11111111-2222-4333-8444-555555555555")
	res, err := h.http.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	h.printed.Write(raw)
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		h.t.Errorf("%s answered Content-Type %q; the host fails anything but JSON", function, ct)
	}
	var out invokeResult
	if err := json.Unmarshal(raw, &out); err != nil {
		h.t.Fatalf("%s answered a body the host cannot parse: %s", function, raw)
	}
	return res.StatusCode, out
}

func (h *harness) register(body string) registrar.Event {
	h.t.Helper()
	var req struct{ RequestID string }
	_ = json.Unmarshal([]byte(body), &req)
	status, out := h.command("register", []byte(body), req.RequestID, 1)
	if status != http.StatusOK {
		h.t.Fatalf("register = %d: %v", status, out.Logs)
	}
	return eventOf(h.t, out)
}

func eventOf(tb testing.TB, out invokeResult) registrar.Event {
	tb.Helper()
	var e registrar.Event
	b, _ := json.Marshal(out.ReturnValue)
	if err := json.Unmarshal(b, &e); err != nil {
		tb.Fatal(err)
	}
	return e
}

// drainEvents receives every event published so far.
func (h *harness) drainEvents() []registrar.Event {
	h.t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		msgs, err := h.events.ReceiveMessages(ctx, 50, nil)
		cancel()
		if err != nil && ctx.Err() == nil {
			h.t.Fatal(err)
		}
		if len(msgs) == 0 {
			return h.seen
		}
		for _, m := range msgs {
			h.printed.Write(m.Body)
			var e registrar.Event
			if err := json.Unmarshal(m.Body, &e); err != nil {
				h.t.Fatalf("event body %s: %v", m.Body, err)
			}
			if m.MessageID != e.MessageID() || m.Subject == nil || *m.Subject != string(e.Type) {
				h.t.Errorf("event message id %q subject %v for %+v", m.MessageID, m.Subject, e)
			}
			h.seen = append(h.seen, e)
			if err := h.events.CompleteMessage(context.Background(), m, nil); err != nil {
				h.t.Fatal(err)
			}
		}
	}
}

// receiveJobs receives the jobs the scheduler sent to the command queue, one client session at a
// time, as the host's session trigger would.
func (h *harness) receiveJobs(want int) []*azservicebus.ReceivedMessage {
	h.t.Helper()
	var got []*azservicebus.ReceivedMessage
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		got = append(got, h.receiveSession(500*time.Millisecond)...)
	}
	if len(got) != want {
		h.t.Fatalf("scheduler jobs = %d, want %d", len(got), want)
	}
	// Nothing more should be queued.
	if extra := h.receiveSession(200 * time.Millisecond); len(extra) > 0 {
		h.t.Fatalf("unexpected extra job %s", extra[0].Body)
	}
	return got
}

// receiveSession accepts the next session with messages and takes them all.
func (h *harness) receiveSession(wait time.Duration) []*azservicebus.ReceivedMessage {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	r, err := h.sb.AcceptNextSessionForQueue(ctx, h.commandQueue, nil)
	if err != nil {
		return nil // no session with messages
	}
	defer r.Close(context.Background())
	var got []*azservicebus.ReceivedMessage
	for {
		rctx, rcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		msgs, _ := r.ReceiveMessages(rctx, 10, nil)
		rcancel()
		if len(msgs) == 0 {
			return got
		}
		for _, m := range msgs {
			h.printed.Write(m.Body)
			if err := r.CompleteMessage(context.Background(), m, nil); err != nil {
				h.t.Fatal(err)
			}
		}
		got = append(got, msgs...)
	}
}

// runJob delivers a job the scheduler sent, as the host would.
func (h *harness) runJob(m *azservicebus.ReceivedMessage, deliveryCount int) (int, invokeResult) {
	h.t.Helper()
	subject, session := "", ""
	if m.Subject != nil {
		subject = *m.Subject
	}
	if m.SessionID != nil {
		session = *m.SessionID
	}
	return h.commandIn(subject, m.Body, m.MessageID, session, deliveryCount)
}

func (h *harness) app(uniqueName string) (app struct {
	ID, AppID string
	Tags      []string
	Passwords []string
	Audience  string
	Display   string
}) {
	for _, a := range h.emu.Graph.State().Applications {
		if a.UniqueName == uniqueName {
			app.ID, app.AppID, app.Tags, app.Audience, app.Display = a.ID, a.AppID, a.Tags, a.SignInAudience, a.DisplayName
			for _, p := range a.Passwords {
				app.Passwords = append(app.Passwords, p.KeyID)
			}
		}
	}
	return app
}

func (h *harness) servicePrincipals(appID string) int {
	n := 0
	for _, sp := range h.emu.Graph.State().ServicePrincipals {
		if sp.AppID == appID {
			n++
		}
	}
	return n
}

func (h *harness) versions(name string) int {
	for _, s := range h.emu.KeyVault.State().Secrets {
		if s.Name == name {
			return len(s.Versions)
		}
	}
	return 0
}

// credential signs in as appreg's handler identity, for test-side reads.
func (h *harness) credential() azcore.TokenCredential {
	ep := h.emu.Endpoints()
	cred, err := azauth.NewCredential(azauth.Options{TenantID: ep.TenantID, ClientID: ep.Clients[0].ClientID,
		ClientSecret: ep.Clients[0].ClientSecret, AuthorityHost: ep.AuthorityHost, Transport: h.emu.Client()})
	if err != nil {
		h.t.Fatal(err)
	}
	return cred
}

// checkSecretsWorkAndNeverLeak proves, after every test, the two promises of the product: the
// latest Key Vault version of each managed secret signs its app in at Entra, and no secret ever
// issued appears in anything printed or published.
func (h *harness) checkSecretsWorkAndNeverLeak() {
	t := h.t
	ctx := context.Background()
	ep := h.emu.Endpoints()
	// New passwords may still be replicating in the emulator, as in Entra (seconds); end the lag.
	h.emu.Graph.Replicate()
	kv, err := azsecrets.NewClient(ep.KeyVaultURL, h.credential(), &azsecrets.ClientOptions{
		ClientOptions: azcore.ClientOptions{Transport: h.emu.Client()}, DisableChallengeResourceVerification: true})
	if err != nil {
		t.Fatal(err)
	}
	secrets := append([]string(nil), h.tap.secrets...)
	for _, s := range h.emu.KeyVault.State().Secrets {
		if s.State != "active" || len(s.Versions) == 0 {
			continue
		}
		res, err := kv.GetSecret(ctx, s.Name, "", nil)
		if err != nil {
			t.Errorf("read %s: %v", s.Name, err)
			continue
		}
		if res.Tags["managed-by"] == nil || *res.Tags["managed-by"] != "appreg" {
			continue
		}
		secrets = append(secrets, *res.Value)
		cred, err := azidentity.NewClientSecretCredential(ep.TenantID, *res.Tags["appId"], *res.Value, &azidentity.ClientSecretCredentialOptions{
			ClientOptions: azcore.ClientOptions{Transport: h.emu.Client(), Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: ep.AuthorityHost}}, DisableInstanceDiscovery: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}}); err != nil {
			t.Errorf("the latest version of %s does not authenticate its app: %v", s.Name, redact(err.Error(), secrets))
		}
	}
	h.drainEvents()
	printed := h.logs.String() + h.printed.String()
	for i, s := range secrets {
		if len(s) >= 8 && strings.Contains(printed, s) {
			t.Errorf("issued secret #%d appears in logs, responses or published messages", i)
		}
	}
}

func redact(s string, secrets []string) string {
	for _, x := range secrets {
		s = strings.ReplaceAll(s, x, "[REDACTED]")
	}
	return s
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
