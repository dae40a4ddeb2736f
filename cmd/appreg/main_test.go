package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"appreg/internal/testutil"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/google/go-cmp/cmp"

	"appreg/internal/registrar"
)

func TestHelpAndUsage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := func(string) string { return "" }
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"--help"}, env, &out, &errb); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, want := range []string{"validate", "enqueue", "rotate", "events", "dlq", "Exit status:", "3  the handler rejected", "5  timed out", "EVENTS_SUBSCRIPTION"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	for _, cmd := range []string{"validate", "enqueue", "rotate", "events", "dlq"} {
		t.Run(cmd, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(ctx, []string{cmd, "--help"}, env, &out, &errb); code != 0 {
				t.Fatalf("exit %d, stderr %s", code, errb.String())
			}
			if !strings.HasPrefix(out.String(), "Usage: appreg "+cmd) || !strings.Contains(out.String(), "Flags:") {
				t.Errorf("usage:\n%s", out.String())
			}
		})
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "Usage:"},
		{"unknown command", []string{"register"}, `unknown command "register"`},
		{"unknown flag", []string{"enqueue", "--nope"}, "flag provided but not defined: -nope"},
		{"stray argument", []string{"events", "extra"}, `unexpected argument "extra"`},
		{"rotate without a name", []string{"rotate"}, "missing <clientName>"},
		{"dlq without an action", []string{"dlq"}, "missing action"},
		{"dlq resubmit without a target", []string{"dlq", "resubmit"}, "one sequence number or --all"},
		{"dlq bad sequence number", []string{"dlq", "show", "x"}, "not a sequence number"},
		{"enqueue without a request", []string{"enqueue"}, "give a request"},
		{"enqueue with file and flags", []string{"enqueue", "--file", "x.json", "--client-name", "abc"}, "exclude each other"},
		{"no Service Bus settings", []string{"events"}, "ServiceBusConnection__fullyQualifiedNamespace or ServiceBusConnection is required"},
		{"missing endpoints file", []string{"events", "--endpoints", "/nonexistent/endpoints.json"}, "no such file"},
		{"local is azemu run's now", []string{"local"}, `unknown command "local"`}, // the CLI links no local Azure
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(ctx, tc.args, env, &out, &errb); code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr %q lacks %q", errb.String(), tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	examples, _ := filepath.Glob(filepath.Join(root, "examples", "*.json"))
	if len(examples) < 2 {
		t.Fatalf("examples: %v", examples)
	}
	h := &harness{t: t, env: map[string]string{}}
	// The examples are written for a deployment with a default FHIR service.
	const fhir = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/ws/fhirservices/fhir"
	withFHIR := &harness{t: t, env: map[string]string{"FHIR_SERVICES": fhir, "FHIR_DEFAULT_SERVICE": fhir}}
	for _, ex := range examples {
		t.Run("example "+filepath.Base(ex), func(t *testing.T) {
			r := withFHIR.run("validate", "--file", ex)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "valid: ") {
				t.Fatal(r)
			}
		})
	}

	huge := `{"clientName":"big-one","notes":"` + strings.Repeat("x", registrar.MaxMessageBytes) + `"}`
	tests := []struct {
		name string
		body string
		env  map[string]string
		want []registrar.Reason // code and field only
	}{
		{"not JSON", `{"clientName": `, nil, []registrar.Reason{{Code: registrar.RejectInvalidJSON}}},
		{"not an object", `["lab-results-sync"]`, nil, []registrar.Reason{{Code: registrar.RejectInvalidJSON}}},
		{"too large", huge, nil, []registrar.Reason{{Code: registrar.RejectTooLarge}}},
		{"unknown field", `{"clientName":"abc","secretText":"x"}`, nil, []registrar.Reason{{Code: registrar.RejectUnknownField, Field: "secretText"}}},
		{"wrong type", `{"clientName":"abc","secret":{"lifetimeDays":"90"}}`, nil, []registrar.Reason{{Code: registrar.RejectWrongType, Field: "secret.lifetimeDays"}}},
		{"missing client name", `{"displayName":"x"}`, nil, []registrar.Reason{{Code: registrar.RejectMissingField, Field: "clientName"}}},
		{"bad client name", `{"clientName":"Lab_Results"}`, nil, []registrar.Reason{{Code: registrar.RejectInvalidClientName, Field: "clientName"}}},
		{"personal accounts", `{"clientName":"abc","signInAudience":"PersonalMicrosoftAccount"}`, nil, []registrar.Reason{{Code: registrar.RejectUnsupportedAudience, Field: "signInAudience"}}},
		{"plain http redirect", `{"clientName":"abc","redirectUris":["http://example.org/cb"]}`, nil, []registrar.Reason{{Code: registrar.RejectInvalidRedirectURI, Field: "redirectUris[0]"}}},
		{"lifetime over the limit", `{"clientName":"abc","secret":{"lifetimeDays":181}}`, nil, []registrar.Reason{{Code: registrar.RejectInvalidLifetime, Field: "secret.lifetimeDays"}}},
		{"lifetime over a configured limit", `{"clientName":"abc","secret":{"lifetimeDays":60}}`, map[string]string{"MAX_SECRET_LIFETIME_DAYS": "30", "DEFAULT_SECRET_LIFETIME_DAYS": "30"},
			[]registrar.Reason{{Code: registrar.RejectInvalidLifetime, Field: "secret.lifetimeDays"}}},
		{"every problem at once", `{"clientName":"X","redirectUris":["https://a/*"],"secret":{"lifetimeDays":0}}`, nil, []registrar.Reason{
			{Code: registrar.RejectInvalidClientName, Field: "clientName"},
			{Code: registrar.RejectInvalidRedirectURI, Field: "redirectUris[0]"},
			{Code: registrar.RejectInvalidLifetime, Field: "secret.lifetimeDays"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &harness{t: t, env: tc.env}
			file := writeFile(t, "request.json", tc.body)
			r := h.run("validate", "--file", file)
			if r.code != exitUsage || !strings.HasPrefix(r.stdout, "invalid: ") {
				t.Fatal(r)
			}
			for _, want := range tc.want {
				if !strings.Contains(r.stdout, want.Code) || !strings.Contains(r.stdout, want.Field) {
					t.Errorf("output lacks %s %s:\n%s", want.Code, want.Field, r.stdout)
				}
			}
			r = h.run("validate", "--json", file)
			var got struct {
				Valid   bool
				Reasons []registrar.Reason
			}
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Valid || r.code != exitUsage {
				t.Fatalf("--json: %v\n%s", err, r)
			}
			for i := range got.Reasons {
				got.Reasons[i].Message = ""
			}
			if diff := cmp.Diff(tc.want, got.Reasons); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("stdin and normalisation", func(t *testing.T) {
		r := h.runCtx(context.Background(), []byte(`{"requestId":"req-1","clientName":"abc","redirectUris":["https://a.example/cb","https://a.example/cb"]}`), "validate", "--json")
		var got struct {
			Valid   bool
			Request validRequest
		}
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || !got.Valid {
			t.Fatalf("%v\n%s", err, r)
		}
		want := validRequest{RequestID: "req-1", ClientName: "abc", DisplayName: "abc", SignInAudience: "AzureADMyOrg",
			RedirectURIs: []string{"https://a.example/cb"}, LifetimeDays: 90}
		if diff := cmp.Diff(want, got.Request); diff != "" {
			t.Errorf("request (-want +got):\n%s", diff)
		}
	})
}

func TestEnqueue(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	example := filepath.Join(repoRoot(t), "examples", "lab-results-sync.json")

	t.Run("from a file", func(t *testing.T) {
		r := h.run("enqueue", "--file", example, "--json")
		if r.code != 0 {
			t.Fatal(r)
		}
		var sent struct{ RequestID, MessageID, Queue, ClientName string }
		if err := json.Unmarshal([]byte(r.stdout), &sent); err != nil {
			t.Fatalf("%v: %s", err, r.stdout)
		}
		msgs := h.receive(cmdQueue, 0, 1)
		if len(msgs) != 1 {
			t.Fatalf("%d messages on the queue", len(msgs))
		}
		m := msgs[0]
		req := requestOf(t, m)
		if m.MessageID != sent.RequestID || req["requestId"] != sent.RequestID || sent.MessageID != sent.RequestID {
			t.Errorf("MessageId %q, body requestId %v, printed %+v", m.MessageID, req["requestId"], sent)
		}
		if m.ContentType == nil || *m.ContentType != "application/json" {
			t.Errorf("ContentType %v", m.ContentType)
		}
		if req["clientName"] != "lab-results-sync" || req["displayName"] != "Lab Results Sync (prod)" || sent.Queue != cmdQueue {
			t.Errorf("body %v", req)
		}
		// The local Azure's FHIR service is the deployment's default, as endpoints.json says.
		svc := h.emu.Endpoints().FHIRServices[0]
		fhir := registrar.FHIRPolicy{Services: []registrar.FHIRService{{ID: svc.ID, URL: svc.URL}}, DefaultService: svc.ID, Roles: []string{"FHIR Data Reader"}}
		if _, reasons := registrar.ParseRegistration(m.Body, registrar.Limits{MaxLifetimeDays: 180, DefaultLifetimeDays: 90, FHIR: fhir}); reasons != nil {
			t.Errorf("the handler would reject what was sent: %v", reasons)
		}
	})

	t.Run("a file's own requestId is kept byte for byte", func(t *testing.T) {
		body := `{"requestId": "req-from-file", "clientName": "abc"}`
		r := h.run("enqueue", "--file", writeFile(t, "r.json", body))
		if r.code != 0 {
			t.Fatal(r)
		}
		m := h.receive(cmdQueue, 0, 1)[0]
		if m.MessageID != "req-from-file" || string(m.Body) != body {
			t.Errorf("MessageId %q body %s", m.MessageID, m.Body)
		}
	})

	t.Run("from flags", func(t *testing.T) {
		r := h.run("enqueue", "--client-name", "claims-export", "--display-name", "Claims Export", "--redirect-uri", "https://c.example/cb",
			"--redirect-uri", "http://localhost:8080/cb", "--lifetime-days", "30", "--audience", "AzureADMultipleOrgs",
			"--notes", "owner: finance", "--requested-by", "bob@example.org", "--request-id", "req-flags-1")
		if r.code != 0 || !strings.Contains(r.stdout, "enqueued request req-flags-1 for claims-export") {
			t.Fatal(r)
		}
		m := h.receive(cmdQueue, 0, 1)[0]
		want := map[string]any{
			"requestId": "req-flags-1", "clientName": "claims-export", "displayName": "Claims Export",
			"signInAudience": "AzureADMultipleOrgs", "redirectUris": []any{"https://c.example/cb", "http://localhost:8080/cb"},
			"secret": map[string]any{"lifetimeDays": float64(30)}, "notes": "owner: finance", "requestedBy": "bob@example.org",
		}
		if diff := cmp.Diff(want, requestOf(t, m)); diff != "" || m.MessageID != "req-flags-1" {
			t.Errorf("MessageId %q, body (-want +got):\n%s", m.MessageID, diff)
		}
	})

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad client name", []string{"--client-name", "Bad_Name"}, "invalid_client_name"},
		{"lifetime too long", []string{"--client-name", "abc", "--lifetime-days", "400"}, "invalid_lifetime"},
		{"bad file", []string{"--file", writeFile(t, "bad.json", `{"clientName":"abc","extra":1}`)}, "unknown_field"},
		{"bad request id", []string{"--client-name", "abc", "--request-id", "has space"}, "invalid_request_id"},
	} {
		t.Run("invalid: "+tc.name, func(t *testing.T) {
			r := h.run(append([]string{"enqueue"}, tc.args...)...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "not sent") {
				t.Fatal(r)
			}
			if msgs := h.receive(cmdQueue, 0, 0); len(msgs) != 0 {
				t.Errorf("%d message(s) sent for an invalid request", len(msgs))
			}
		})
	}
}

func TestEnqueueWait(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// The fake handler answers by client name: ok-* registered, bad-* rejected, fail-* failed,
	// slow-* never.
	h.fakeHandler(func(m *azservicebus.ReceivedMessage) *registrar.Event {
		req := bodyOf(m)
		id, name := req["requestId"], req["clientName"]
		e := &registrar.Event{RequestID: id, ClientName: name}
		switch {
		case strings.HasPrefix(name, "ok-"):
			e.Type, e.AppID, e.ServicePrincipalID, e.KeyID = registrar.EventRegistered, "app-"+id, "sp-"+id, "key-"+id
			e.SecretURI = "https://vault.example/secrets/" + name + "-client-secret/v1"
			e.ExpiresOn = time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
		case strings.HasPrefix(name, "bad-"):
			e.Type = registrar.EventRejected
			e.Reasons = []registrar.Reason{{Code: registrar.RejectAppNotManaged, Field: "clientName", Message: "an app with this name exists and appreg did not create it"}}
		case strings.HasPrefix(name, "fail-"):
			e.Type = registrar.EventFailed
			e.Reasons = []registrar.Reason{{Code: "unavailable", Message: "graph.addPassword: unavailable"}}
		default:
			return nil
		}
		return e
	})

	tests := []struct {
		client string
		extra  []string
		code   int
		want   []string
	}{
		{"ok-lab-sync", nil, exitOK, []string{"registered ok-lab-sync", "appId", "servicePrincipalId", "keyId", "https://vault.example/secrets/ok-lab-sync-client-secret/v1", "2027-01-02T03:04:05Z"}},
		{"bad-takeover", nil, exitRejected, []string{"rejected bad-takeover", "app_not_managed", "clientName: an app with this name exists"}},
		{"fail-graph", nil, exitFailed, []string{"failed fail-graph", "unavailable"}},
		{"slow-client", []string{"--timeout", "300ms"}, exitTimeout, nil},
	}
	for _, tc := range tests {
		t.Run(tc.client, func(t *testing.T) {
			id := "req-" + tc.client
			r := h.run(append([]string{"enqueue", "--client-name", tc.client, "--request-id", id, "--wait"}, tc.extra...)...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", r.code, tc.code, r)
			}
			for _, w := range append(tc.want, id) {
				if tc.code != exitTimeout && !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
			if tc.code == exitTimeout && !strings.Contains(r.stderr, "no outcome for request "+id) {
				t.Errorf("stderr: %s", r.stderr)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		r := h.run("enqueue", "--client-name", "ok-json", "--wait", "--json")
		var got struct {
			RequestID string
			Outcome   seenEvent
		}
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 {
			t.Fatalf("%v\n%s", err, r)
		}
		e := got.Outcome
		if e.Event.Type != registrar.EventRegistered || e.Event.RequestID != got.RequestID || e.MessageID != got.RequestID+":registered" ||
			e.Subject != "registered" || e.SequenceNumber == 0 || e.Event.AppID != "app-"+got.RequestID {
			t.Errorf("outcome %+v", e)
		}
	})

	t.Run("a stale outcome of the same request id is not taken for the new one", func(t *testing.T) {
		// req-ok-lab-sync already has an outcome; a resend within the duplicate-detection
		// window is dropped, so the honest answer is a timeout that says why it may be.
		r := h.run("enqueue", "--client-name", "ok-lab-sync", "--request-id", "req-ok-lab-sync", "--wait", "--timeout", "300ms")
		if r.code != exitTimeout || !strings.Contains(r.stderr, "Service Bus dropped this one: send it with a new --request-id") {
			t.Fatal(r)
		}
	})
}

// Two requesters wait on the one subscription at the same time; each gets its own outcome, and
// the events stay on the subscription for everyone else.
func TestConcurrentWaitersDoNotStealEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pub := h.publisher()
	// The handler's stand-in takes both requests before it answers either, so both requesters
	// are waiting when the events come, and it answers in reverse order.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		var got []*azservicebus.ReceivedMessage
		for len(got) < 2 { // two clients: two sessions
			r, err := h.sb.AcceptNextSessionForQueue(ctx, cmdQueue, &azservicebus.SessionReceiverOptions{ReceiveMode: azservicebus.ReceiveModeReceiveAndDelete})
			if err != nil {
				return
			}
			msgs, err := r.ReceiveMessages(ctx, 1, nil)
			r.Close(context.Background())
			if err != nil {
				return
			}
			got = append(got, msgs...)
		}
		for i := len(got) - 1; i >= 0; i-- {
			req := bodyOf(got[i])
			name := req["clientName"]
			_ = pub.Publish(ctx, registrar.Event{Type: registrar.EventRegistered, RequestID: req["requestId"], ClientName: name, AppID: "app-" + name})
		}
	}()
	results := make(chan result, 2)
	for _, name := range []string{"first-client", "second-client"} {
		go func() { results <- h.run("enqueue", "--client-name", name, "--request-id", "req-"+name, "--wait") }()
	}
	for range 2 {
		r := <-results
		if r.code != 0 {
			t.Fatal(r)
		}
		mine, other := "first-client", "second-client"
		if strings.Contains(r.stdout, "second-client") {
			mine, other = other, mine
		}
		if !strings.Contains(r.stdout, "requestId           req-"+mine) || !strings.Contains(r.stdout, "app-"+mine) || strings.Contains(r.stdout, other) {
			t.Errorf("a waiter got someone else's event:\n%s", r.stdout)
		}
	}
	if n := len(h.peekSubscription()); n != 2 {
		t.Errorf("%d events left on the subscription, want both", n)
	}
}

func TestRotate(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

	tests := []struct {
		name       string
		args       []string
		wantReason string
		wantRevoke bool
	}{
		{"on demand", []string{"lab-results-sync"}, registrar.ReasonOnDemand, false},
		{"revoke old", []string{"--revoke-old", "lab-results-sync"}, registrar.ReasonOnDemand, true},
		{"compromised", []string{"lab-results-sync", "--compromised"}, registrar.ReasonCompromised, true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// One job per instant: the MessageId carries requestedAt, so two identical jobs sent
			// at the same instant are one job to duplicate detection.
			now := now.Add(time.Duration(i) * time.Second)
			var out, errb testutil.Buffer
			c := h.cli(&out, &errb)
			c.now = func() time.Time { return now }
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			if code := c.main(ctx, append([]string{"rotate", "--json"}, tc.args...)); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			msgs := h.receive(cmdQueue, 0, 1)
			if len(msgs) != 1 {
				t.Fatalf("%d jobs", len(msgs))
			}
			job, reasons := registrar.ParseRotationJob(msgs[0].Body)
			if reasons != nil {
				t.Fatalf("the handler would reject the job: %v", reasons)
			}
			want := registrar.RotationJob{ClientName: "lab-results-sync", Reason: tc.wantReason, RevokeOld: tc.wantRevoke, RequestedAt: now}
			if diff := cmp.Diff(want, job); diff != "" {
				t.Errorf("job (-want +got):\n%s", diff)
			}
			if msgs[0].MessageID != want.MessageID() || msgs[0].ContentType == nil || *msgs[0].ContentType != "application/json" {
				t.Errorf("MessageId %q (want %q), ContentType %v", msgs[0].MessageID, want.MessageID(), msgs[0].ContentType)
			}
			var printed struct{ MessageID, Queue string }
			if err := json.Unmarshal([]byte(out.String()), &printed); err != nil || printed.MessageID != want.MessageID() || printed.Queue != cmdQueue {
				t.Errorf("printed %s (%v)", out.String(), err)
			}
		})
	}

	t.Run("invalid client name", func(t *testing.T) {
		r := h.run("rotate", "Not-A-Name")
		if r.code != exitUsage || !strings.Contains(r.stderr, "invalid_client_name") {
			t.Fatal(r)
		}
		if n := len(h.receive(cmdQueue, 0, 0)); n != 0 {
			t.Errorf("%d jobs sent", n)
		}
	})

	t.Run("wait", func(t *testing.T) {
		h.fakeHandler(func(m *azservicebus.ReceivedMessage) *registrar.Event {
			job, _ := registrar.ParseRotationJob(m.Body)
			if job.ClientName == "unknown-client" {
				return &registrar.Event{Type: registrar.EventRejected, RequestID: m.MessageID, ClientName: job.ClientName,
					Reasons: []registrar.Reason{{Code: registrar.RejectAppNotFound, Field: "clientName", Message: "no application is registered for this client"}}}
			}
			// A rotation also retires; the waiter must take "rotated" and ignore "retired".
			return &registrar.Event{Type: registrar.EventRotated, RequestID: m.MessageID, ClientName: job.ClientName, KeyID: "new-key",
				SecretURI: "https://vault.example/secrets/" + job.ClientName + "-client-secret/v2"}
		})
		r := h.run("rotate", "lab-results-sync", "--wait")
		if r.code != 0 || !strings.Contains(r.stdout, "rotated lab-results-sync") || !strings.Contains(r.stdout, "-client-secret/v2") ||
			!strings.Contains(r.stdout, "rotate:lab-results-sync:") {
			t.Fatal(r)
		}
		r = h.run("rotate", "unknown-client", "--wait")
		if r.code != exitRejected || !strings.Contains(r.stdout, "app_not_found") {
			t.Fatal(r)
		}
	})
}

func TestEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pub := h.publisher()
	ctx := context.Background()
	publish := func(e registrar.Event) {
		t.Helper()
		e.OccurredAt = time.Now().UTC()
		if err := pub.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	publish(registrar.Event{Type: registrar.EventRegistered, RequestID: "r1", ClientName: "alpha", AppID: "app-1", SecretURI: "https://v/secrets/alpha-client-secret/1"})
	publish(registrar.Event{Type: registrar.EventRejected, RequestID: "r2", ClientName: "beta", Reasons: []registrar.Reason{{Code: "invalid_lifetime", Field: "secret.lifetimeDays", Message: "must be between 1 and 180 days"}}})
	publish(registrar.Event{Type: registrar.EventRotated, RequestID: "rotate:alpha:x", ClientName: "alpha", KeyID: "k2"})

	r := h.run("events")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 || !strings.Contains(lines[0], "registered") || !strings.Contains(lines[1], "invalid_lifetime") || !strings.Contains(lines[2], "rotated") {
		t.Fatal(r)
	}
	for _, tc := range []struct {
		args []string
		want []string // request ids
	}{
		{[]string{"--type", "rejected"}, []string{"r2"}},
		{[]string{"--request-id", "r1"}, []string{"r1"}},
		{[]string{"--client-name", "alpha"}, []string{"r1", "rotate:alpha:x"}},
		{[]string{"--type", "failed"}, nil},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := h.run(append([]string{"events", "--json"}, tc.args...)...)
			if r.code != 0 {
				t.Fatal(r)
			}
			var got []string
			dec := json.NewDecoder(strings.NewReader(r.stdout))
			for dec.More() {
				var e seenEvent
				if err := dec.Decode(&e); err != nil {
					t.Fatalf("%v in %s", err, r.stdout)
				}
				if e.MessageID != e.Event.RequestID+":"+string(e.Event.Type) {
					t.Errorf("messageId %q for %+v", e.MessageID, e.Event)
				}
				got = append(got, e.Event.RequestID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("follow", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		var out, errb testutil.Buffer
		c := h.cli(&out, &errb)
		done := make(chan int)
		go func() { done <- c.main(ctx, []string{"events", "--follow", "--type", "failed"}) }()
		publish(registrar.Event{Type: registrar.EventFailed, RequestID: "r9", ClientName: "gamma"})
		for !strings.Contains(out.String(), "r9") {
			select {
			case code := <-done:
				t.Fatalf("follow ended early: exit %d\n%s%s", code, out.String(), errb.String())
			case <-time.After(10 * time.Millisecond):
			}
		}
		cancel() // Ctrl-C
		if code := <-done; code != 0 {
			t.Errorf("exit %d after Ctrl-C: %s", code, errb.String())
		}
		if strings.Contains(out.String(), "alpha") {
			t.Errorf("the filter let other events through:\n%s", out.String())
		}
	})

	if n := len(h.peekSubscription()); n != 4 {
		t.Errorf("%d events on the subscription, want all 4: listing must not take any", n)
	}
}

func TestDeadLetterQueue(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ct := "application/json"
	bodies := map[string]string{}
	for i := range 3 {
		id := fmt.Sprintf("req-%d", i)
		bodies[id] = fmt.Sprintf(`{"requestId":%q,"clientName":"client-%d"}`, id, i)
		client := fmt.Sprintf("client-%d", i)
		h.send(cmdQueue, &azservicebus.Message{MessageID: &id, ContentType: &ct, Body: []byte(bodies[id]), SessionID: &client, Subject: to.Ptr("register"),
			ApplicationProperties: map[string]any{"clientName": client}})
	}
	// Dead-letter them as the service would after the last delivery.
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	for range 3 {
		r, err := h.sb.AcceptNextSessionForQueue(ctx, cmdQueue, nil)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := r.ReceiveMessages(ctx, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		reason, desc := "MaxDeliveryCountExceeded", "Message could not be consumed after 10 delivery attempts."
		if err := r.DeadLetterMessage(ctx, msgs[0], &azservicebus.DeadLetterOptions{Reason: &reason, ErrorDescription: &desc}); err != nil {
			t.Fatal(err)
		}
		r.Close(ctx)
	}

	list := func() []dlqMessage {
		t.Helper()
		res := h.run("dlq", "list", "--json")
		var rows []dlqMessage
		if err := json.Unmarshal([]byte(res.stdout), &rows); err != nil || res.code != 0 {
			t.Fatalf("%v\n%s", err, res)
		}
		return rows
	}
	rows := list()
	if len(rows) != 3 {
		t.Fatalf("%d dead letters", len(rows))
	}
	for _, row := range rows {
		if row.Reason != "MaxDeliveryCountExceeded" || !strings.HasPrefix(row.Description, "Message could not be consumed") || row.SequenceNumber == 0 || row.EnqueuedTime.IsZero() {
			t.Errorf("row %+v", row)
		}
	}
	res := h.run("dlq", "list")
	if res.code != 0 || !strings.Contains(res.stdout, "SEQ") || !strings.Contains(res.stdout, "req-1") || !strings.Contains(res.stdout, "MaxDeliveryCountExceeded") {
		t.Fatal(res)
	}

	seq := fmt.Sprint(rows[1].SequenceNumber)
	t.Run("show", func(t *testing.T) {
		res := h.run("dlq", "show", seq)
		if res.code != 0 || !strings.Contains(res.stdout, `"clientName": "client-1"`) || !strings.Contains(res.stdout, "deadLetterReason") {
			t.Fatal(res)
		}
		res = h.run("dlq", "show", seq, "--json")
		var m map[string]any
		if err := json.Unmarshal([]byte(res.stdout), &m); err != nil {
			t.Fatal(err)
		}
		if body, _ := m["body"].(map[string]any); body["requestId"] != rows[1].MessageID {
			t.Errorf("show --json: %v", m)
		}
		if res := h.run("dlq", "show", "999"); res.code != exitUsage {
			t.Error(res)
		}
	})

	t.Run("resubmit one", func(t *testing.T) {
		var out, errb testutil.Buffer
		c := h.cli(&out, &errb)
		c.now = func() time.Time { return time.Unix(1_800_000_000, 0) }
		if code := c.main(ctx, []string{"dlq", "resubmit", seq}); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		live := h.receive(cmdQueue, 0, 1)
		if len(live) != 1 {
			t.Fatalf("%d messages on the live queue", len(live))
		}
		m := live[0]
		if m.MessageID != rows[1].MessageID+":resubmit:1800000000" || string(m.Body) != bodies[rows[1].MessageID] ||
			!cmp.Equal(m.ApplicationProperties, map[string]any{"clientName": "client-1"}) || *m.ContentType != ct ||
			m.SessionID == nil || *m.SessionID != "client-1" || m.Subject == nil || *m.Subject != "register" {
			t.Errorf("resubmitted %q %s %v session %v subject %v", m.MessageID, m.Body, m.ApplicationProperties, m.SessionID, m.Subject)
		}
		left := list()
		if len(left) != 2 || left[0].MessageID != rows[0].MessageID || left[1].MessageID != rows[2].MessageID {
			t.Errorf("left in the dead-letter queue: %+v", left)
		}
		if res := h.run("dlq", "resubmit", seq); res.code != exitUsage {
			t.Errorf("resubmitting a message that is gone: %s", res)
		}
	})

	t.Run("purge all", func(t *testing.T) {
		res := h.run("dlq", "purge", "--all", "--json")
		var done []map[string]any
		if err := json.Unmarshal([]byte(res.stdout), &done); err != nil || res.code != 0 || len(done) != 2 {
			t.Fatalf("%v\n%s", err, res)
		}
		if left := list(); len(left) != 0 {
			t.Errorf("left: %+v", left)
		}
		if live := h.receive(cmdQueue, 0, 0); len(live) != 0 {
			t.Errorf("purge sent %d message(s)", len(live))
		}
	})
}

// With a namespace and no endpoints.json, the CLI signs in with the developer credential chain.
// Building the client touches no network, so this runs offline; the sign-in itself needs Azure.
func TestIdentityBasedConnection(t *testing.T) {
	t.Parallel()
	env := map[string]string{"ServiceBusConnection__fullyQualifiedNamespace": "contoso.servicebus.windows.net", "EVENTS_SUBSCRIPTION": "ops"}
	c := newCLI(func(k string) string { return env[k] }, &testutil.Buffer{}, &testutil.Buffer{})
	b, err := c.open(connFlags{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if b.cfg.ServiceBusNamespace != "contoso.servicebus.windows.net" || b.cfg.ServiceBusConnectionString != "" || b.subscription != "ops" {
		t.Errorf("settings %+v, subscription %q", b.cfg, b.subscription)
	}
	env["ServiceBusConnection__fullyQualifiedNamespace"] = "sb://contoso.servicebus.windows.net"
	if _, err := c.open(connFlags{}); err == nil || !strings.Contains(err.Error(), "without a scheme") {
		t.Errorf("a namespace with a scheme: %v", err)
	}
}

func TestResubmitID(t *testing.T) {
	t.Parallel()
	at := time.Unix(1_700_000_000, 0)
	long := strings.Repeat("a", 128)
	tests := []struct{ in, want string }{
		{"req-1", "req-1:resubmit:1700000000"},
		{"req-1:resubmit:1600000000", "req-1:resubmit:1700000000"},
		{long, long[:128-len(":resubmit:1700000000")] + ":resubmit:1700000000"},
	}
	for _, tc := range tests {
		if got := resubmitID(tc.in, at); got != tc.want || len(got) > 128 {
			t.Errorf("resubmitID(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
