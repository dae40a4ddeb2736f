package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"appreg/emulator/graphemu"
	"appreg/emulator/keyvaultemu"
	"appreg/internal/config"
	"appreg/internal/registrar"
)

const day = 24 * time.Hour

func TestE2ERegisterNewClient(t *testing.T) {
	h := newHarness(t, nil)
	ev := h.register(`{"requestId":"7d0c4c1e-5d2a-4d55-9b0e-0f3c2f1d9a10","clientName":"lab-results-sync",
		"displayName":"Lab Results Sync (prod)","signInAudience":"AzureADMyOrg",
		"redirectUris":["https://labsync.example.org/auth/callback"],"secret":{"lifetimeDays":90},
		"notes":"owner: integration team","requestedBy":"alice@example.org"}`)

	app := h.app("appreg-lab-results-sync")
	if app.AppID == "" || ev.AppID != app.AppID || ev.AppObjectID != app.ID {
		t.Fatalf("event %+v does not match app %+v", ev, app)
	}
	if !slices.Contains(app.Tags, "appreg:managed") || !slices.Contains(app.Tags, "appreg:client:lab-results-sync") ||
		app.Audience != "AzureADMyOrg" || app.Display != "Lab Results Sync (prod)" {
		t.Errorf("app = %+v", app)
	}
	if len(app.Passwords) != 1 || ev.KeyID != app.Passwords[0] || h.servicePrincipals(app.AppID) != 1 {
		t.Errorf("passwords %v, service principals %d", app.Passwords, h.servicePrincipals(app.AppID))
	}
	if !strings.HasPrefix(ev.SecretURI, h.emu.Endpoints().KeyVaultURL+"secrets/lab-results-sync-client-secret/") || ev.ServicePrincipalID == "" ||
		ev.Verified == nil || !*ev.Verified {
		t.Errorf("event = %+v", ev)
	}
	if got := ev.ExpiresOn.Sub(h.clock.Now()); got < 89*day || got > 90*day {
		t.Errorf("expires in %v, want 90 days", got)
	}
	events := h.drainEvents()
	if len(events) != 1 || events[0].Type != registrar.EventRegistered || events[0].RequestID != "7d0c4c1e-5d2a-4d55-9b0e-0f3c2f1d9a10" {
		t.Errorf("published %+v", events)
	}
}

func TestE2ESameRequestThreeTimes(t *testing.T) {
	h := newHarness(t, nil)
	body := `{"requestId":"r-3x","clientName":"three-times"}`
	var keys []string
	for range 3 {
		keys = append(keys, h.register(body).KeyID)
	}
	app := h.app("appreg-three-times")
	var apps int
	for _, a := range h.emu.Graph.State().Applications {
		if strings.HasPrefix(a.UniqueName, "appreg-") {
			apps++
		}
	}
	if apps != 1 || h.servicePrincipals(app.AppID) != 1 || len(app.Passwords) != 1 || h.versions("three-times-client-secret") != 1 {
		t.Fatalf("apps %d, service principals %d, passwords %d, versions %d; want 1 each",
			apps, h.servicePrincipals(app.AppID), len(app.Passwords), h.versions("three-times-client-secret"))
	}
	if keys[0] != keys[1] || keys[1] != keys[2] {
		t.Errorf("keyIds differ across deliveries: %v", keys)
	}
}

func TestE2EChangedRequestUpdatesApp(t *testing.T) {
	h := newHarness(t, nil)
	first := h.register(`{"requestId":"r-1","clientName":"changing"}`)
	second := h.register(`{"requestId":"r-2","clientName":"changing","displayName":"Changed","signInAudience":"AzureADMultipleOrgs"}`)
	app := h.app("appreg-changing")
	if app.Display != "Changed" || app.Audience != "AzureADMultipleOrgs" || len(app.Passwords) != 1 || second.KeyID != first.KeyID {
		t.Errorf("app %+v, keys %s %s", app, first.KeyID, second.KeyID)
	}
}

func TestE2ERejections(t *testing.T) {
	h := newHarness(t, nil)
	// An app under our uniqueName that appreg did not create: made directly through Graph.
	tok, err := h.credential().GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, h.emu.URL()+"/v1.0/applications",
		strings.NewReader(`{"displayName":"hand made","uniqueName":"appreg-hand-made","signInAudience":"AzureADMyOrg"}`))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	res, err := h.emu.Client().Do(req)
	if err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("seeding an unmanaged app: %v %v", res, err)
	}
	res.Body.Close()

	tests := []struct {
		name, body, code, field string
	}{
		{"BadJSON", `{"requestId":`, registrar.RejectInvalidJSON, ""},
		{"Unknown", `{"requestId":"r","clientName":"abc","secretText":"x"}`, registrar.RejectUnknownField, "secretText"},
		{"WrongType", `{"requestId":"r","clientName":"abc","secret":{"lifetimeDays":"90"}}`, registrar.RejectWrongType, "secret.lifetimeDays"},
		{"Missing", `{"requestId":"r"}`, registrar.RejectMissingField, "clientName"},
		{"ClientName", `{"requestId":"r","clientName":"Bad_Name"}`, registrar.RejectInvalidClientName, "clientName"},
		{"RequestID", `{"requestId":"a b","clientName":"abc"}`, registrar.RejectInvalidRequestID, "requestId"},
		{"Audience", `{"requestId":"r","clientName":"abc","signInAudience":"PersonalMicrosoftAccount"}`, registrar.RejectUnsupportedAudience, "signInAudience"},
		{"Redirect", `{"requestId":"r","clientName":"abc","redirectUris":["http://evil.example/cb"]}`, registrar.RejectInvalidRedirectURI, "redirectUris[0]"},
		{"TooManyRedirects", `{"requestId":"r","clientName":"abc","redirectUris":[` + strings.TrimSuffix(strings.Repeat(`"https://a.example/",`, 21), ",") + `]}`, registrar.RejectTooManyRedirectURIs, "redirectUris"},
		{"Lifetime", `{"requestId":"r","clientName":"abc","secret":{"lifetimeDays":731}}`, registrar.RejectInvalidLifetime, "secret.lifetimeDays"},
		{"DisplayName", `{"requestId":"r","clientName":"abc","displayName":"` + strings.Repeat("x", 257) + `"}`, registrar.RejectInvalidDisplayName, "displayName"},
		{"Notes", `{"requestId":"r","clientName":"abc","notes":"` + strings.Repeat("x", 1025) + `"}`, registrar.RejectTooLong, "notes"},
		{"TooLarge", `{"requestId":"r","clientName":"abc","notes":"` + strings.Repeat("x", 70000) + `"}`, registrar.RejectTooLarge, ""},
		{"NotOurs", `{"requestId":"r","clientName":"hand-made"}`, registrar.RejectAppNotManaged, "clientName"},
	}
	returned := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := h.command("register", []byte(tt.body), "msg-"+tt.name, 1)
			if status != http.StatusOK {
				t.Fatalf("status %d: a bad request must complete, not retry", status)
			}
			ev := eventOf(t, out)
			returned[ev.RequestID] = true
			if ev.Type != registrar.EventRejected || len(ev.Reasons) == 0 || ev.Reasons[0].Code != tt.code || ev.Reasons[0].Field != tt.field {
				t.Errorf("event = %+v, want rejected %s on %q", ev, tt.code, tt.field)
			}
		})
	}
	if app := h.app("appreg-hand-made"); len(app.Passwords) != 0 || slices.Contains(app.Tags, "appreg:managed") {
		t.Errorf("the unmanaged app was touched: %+v", app)
	}
	// Every rejection was published; the topic's duplicate detection folds those that share a
	// requestId (MessageId <requestId>:rejected) into one.
	published := map[string]bool{}
	for _, e := range h.drainEvents() {
		if e.Type == registrar.EventRejected {
			published[e.RequestID] = true
		}
	}
	for id := range returned {
		if !published[id] {
			t.Errorf("no rejected event published for request %q", id)
		}
	}
}

func TestE2ERotationScheduleRotateRetire(t *testing.T) {
	h := newHarness(t, nil)
	due := h.register(`{"requestId":"r-due","clientName":"rotate-me","secret":{"lifetimeDays":30}}`)
	h.register(`{"requestId":"r-fresh","clientName":"leave-me","secret":{"lifetimeDays":180}}`)

	// Not due yet: nothing scheduled.
	if status, out := h.timer(); status != http.StatusOK || !strings.Contains(out.Logs[0], "0 rotations and 0 maintenance jobs sent") {
		t.Fatalf("first schedule: %d %v", status, out.Logs)
	}
	h.receiveJobs(0)

	// 21 days on, 9 are left: inside min(30 days, 30/3 days).
	h.clock.Advance(21 * day)
	if status, out := h.timer(); status != http.StatusOK || !strings.Contains(out.Logs[0], "1 rotations and 0 maintenance jobs sent") {
		t.Fatalf("second schedule: %d %v", status, out.Logs)
	}
	jobs := h.receiveJobs(1)
	job := jobs[0]
	if job.MessageID != "rotate:"+due.AppID+":"+due.KeyID || *job.Subject != "rotate" || *job.SessionID != "rotate-me" {
		t.Errorf("job message id %q subject %v session %v", job.MessageID, job.Subject, job.SessionID)
	}
	status, out := h.runJob(job, 1)
	if status != http.StatusOK {
		t.Fatalf("rotate = %d %v", status, out.Logs)
	}
	rotated := eventOf(t, out)
	if rotated.Type != registrar.EventRotated || rotated.KeyID == due.KeyID || rotated.AppID != due.AppID {
		t.Fatalf("rotated = %+v", rotated)
	}
	app := h.app("appreg-rotate-me")
	if len(app.Passwords) != 2 || h.versions("rotate-me-client-secret") != 2 {
		t.Fatalf("after rotation: passwords %v, versions %d (want overlap: 2 and 2)", app.Passwords, h.versions("rotate-me-client-secret"))
	}

	// The same job again (redelivery, or a second timer run's job): already rotated, nothing added.
	if status, out := h.runJob(job, 2); status != http.StatusOK || eventOf(t, out).KeyID != rotated.KeyID {
		t.Fatalf("redelivered job: %d %v", status, out.Logs)
	}
	if n := len(h.app("appreg-rotate-me").Passwords); n != 2 || h.versions("rotate-me-client-secret") != 2 {
		t.Fatalf("redelivery changed state: passwords %d", n)
	}

	// Retire after RETIRE_AFTER (7 days), not before: the timer sends a maintenance job, which
	// decides on fresh state in the client's session.
	h.clock.Advance(7*day - time.Hour)
	h.scheduleAndRun()
	if n := len(h.app("appreg-rotate-me").Passwords); n != 2 {
		t.Fatalf("retired before the grace period: %d passwords", n)
	}
	h.clock.Advance(2 * time.Hour)
	h.scheduleAndRun()
	if got := h.app("appreg-rotate-me").Passwords; len(got) != 1 || got[0] != rotated.KeyID {
		t.Fatalf("after retirement: %v, want only %s", got, rotated.KeyID)
	}
	var types []string
	for _, e := range h.drainEvents() {
		if e.ClientName == "rotate-me" {
			types = append(types, string(e.Type))
		}
	}
	if !slices.Contains(types, "rotated") || !slices.Contains(types, "retired") {
		t.Errorf("events for rotate-me: %v", types)
	}
}

func TestE2ERevokeOld(t *testing.T) {
	h := newHarness(t, nil)
	reg := h.register(`{"requestId":"r-c","clientName":"compromised"}`)
	job, _ := json.Marshal(registrar.RotationJob{ClientName: "compromised", Reason: registrar.ReasonCompromised, RequestedAt: time.Now().UTC()})
	status, out := h.command("rotate", job, "rotate:compromised:now", 1)
	if status != http.StatusOK {
		t.Fatalf("rotate = %d %v", status, out.Logs)
	}
	ev := eventOf(t, out)
	if got := h.app("appreg-compromised").Passwords; len(got) != 1 || got[0] != ev.KeyID || got[0] == reg.KeyID {
		t.Errorf("passwords %v: the compromised %s must be gone at once", got, reg.KeyID)
	}
	if !slices.Equal(ev.RevokedKeyIDs, []string{reg.KeyID}) {
		t.Errorf("rotated event revoked %v, want %s", ev.RevokedKeyIDs, reg.KeyID)
	}
}

func TestE2EOrphanSweep(t *testing.T) {
	h := newHarness(t, nil)
	reg := h.register(`{"requestId":"r-o","clientName":"orphaned"}`)
	// A crash between addPassword and the Key Vault write: a password appreg made that nobody holds.
	tok, err := h.credential().GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, h.emu.URL()+"/v1.0/applications/"+reg.AppObjectID+"/addPassword",
		strings.NewReader(`{"passwordCredential":{"displayName":"appreg crashed-request"}}`))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	res, err := h.emu.Client().Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("addPassword: %v %v", res, err)
	}
	res.Body.Close()
	if n := len(h.app("appreg-orphaned").Passwords); n != 2 {
		t.Fatalf("passwords = %d", n)
	}
	h.scheduleAndRun()
	if n := len(h.app("appreg-orphaned").Passwords); n != 2 {
		t.Fatalf("swept before ORPHAN_AFTER: %d", n)
	}
	h.clock.Advance(16 * time.Minute)
	// The sweep judges what Graph lists; a replica that has not caught up with the orphan hides
	// it until the next run. Settle replication so this run is the one that sweeps.
	h.emu.Graph.Replicate()
	h.scheduleAndRun()
	if got := h.app("appreg-orphaned").Passwords; len(got) != 1 || got[0] != reg.KeyID {
		t.Errorf("after the sweep: %v, want only %s", got, reg.KeyID)
	}
}

func TestE2EGraphThrottling(t *testing.T) {
	h := newHarness(t, nil)
	// Two 429s with Retry-After: kiota's retry handler waits them out within one invocation.
	if err := h.emu.Graph.InjectFault(graphemu.Fault{Operation: graphemu.OpAddPassword, Status: http.StatusTooManyRequests, RetryAfter: time.Second, Count: 2}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ev := h.register(`{"requestId":"r-429","clientName":"throttled"}`)
	if ev.Type != registrar.EventRegistered || time.Since(start) < 2*time.Second {
		t.Errorf("event %+v after %v: Retry-After was not honoured", ev, time.Since(start))
	}
	if n := len(h.app("appreg-throttled").Passwords); n != 1 {
		t.Errorf("passwords = %d", n)
	}
}

func TestE2EKeyVaultFailureCompensates(t *testing.T) {
	// A short budget, so each delivery hands the message back within a second.
	h := newHarness(t, map[string]string{config.EnvRetryBudget: "3s", config.EnvAttemptTimeout: "2s"})
	// A 3 s budget is about Key Vault here; Graph's replication lag (up to 4 s) would spend it first.
	if err := h.emu.Graph.SetReplication(graphemu.Replication{}); err != nil {
		t.Fatal(err)
	}
	if err := h.emu.KeyVault.InjectFault(keyvaultemu.Fault{Operation: "setSecret", Status: http.StatusInternalServerError}); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"requestId":"r-kv","clientName":"kv-down"}`)
	for _, delivery := range []int{1, 10} {
		status, out := h.command("register", body, "r-kv", delivery)
		if status != http.StatusInternalServerError {
			t.Fatalf("delivery %d: status %d, want 500 so the host abandons", delivery, status)
		}
		app := h.app("appreg-kv-down")
		if len(app.Passwords) != 0 || h.versions("kv-down-client-secret") != 0 {
			t.Fatalf("delivery %d left passwords %v and %d versions behind", delivery, app.Passwords, h.versions("kv-down-client-secret"))
		}
		_ = out
	}
	var failed []registrar.Event
	for _, e := range h.drainEvents() {
		if e.Type == registrar.EventFailed {
			failed = append(failed, e)
		}
	}
	if len(failed) != 1 || failed[0].RequestID != "r-kv" || len(failed[0].Reasons) == 0 {
		t.Errorf("failed events = %+v, want one, on the final delivery", failed)
	}
	// Key Vault recovers; the next delivery converges.
	h.emu.KeyVault.ClearFaults()
	if ev := h.register(string(body)); ev.Type != registrar.EventRegistered || len(h.app("appreg-kv-down").Passwords) != 1 {
		t.Errorf("after recovery: %+v", ev)
	}
}

func TestE2EReplicationLag(t *testing.T) {
	h := newHarness(t, nil)
	if err := h.emu.Graph.SetReplication(graphemu.Replication{Replicas: 3, MinLag: 500 * time.Millisecond, MaxLag: 1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	ev := h.register(`{"requestId":"r-lag","clientName":"lagging"}`)
	app := h.app("appreg-lagging")
	if ev.Type != registrar.EventRegistered || h.servicePrincipals(app.AppID) != 1 || len(app.Passwords) != 1 {
		t.Errorf("event %+v, app %+v", ev, app)
	}
	// The new password is refused while it replicates; the handler waits until it signs in.
	if ev.Verified == nil || !*ev.Verified || !strings.Contains(h.logs.String(), `"code":7000215`) {
		t.Errorf("verified = %v; the sign-in was not retried through replication", ev.Verified)
	}
	if !strings.Contains(h.logs.String(), "NoBackingApplicationObject") && !strings.Contains(h.logs.String(), "replicating") {
		t.Log("note: no replication retry was logged")
	}
}

// TestE2EMalformedRequestsAreRejected covers D6: encoding/json's leniency let a duplicate member
// or a stray brace through, and the host's string binding turns bytes that are not UTF-8 into
// U+FFFD before the handler sees them (the envelope below is built the same way).
func TestE2EMalformedRequestsAreRejected(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name, body, code, field string
	}{
		{"DuplicateClientName", `{"requestId":"r-dup","clientName":"Bad Name!","clientName":"ok-name"}`, registrar.RejectDuplicateField, "clientName"},
		{"DuplicateLifetime", `{"requestId":"r-dup2","clientName":"ok-name","secret":{"lifetimeDays":10000,"lifetimeDays":30}}`, registrar.RejectDuplicateField, "secret.lifetimeDays"},
		{"StrayBrace", `{"requestId":"r-brace","clientName":"ok-name"}}`, registrar.RejectInvalidJSON, ""},
		{"StrayBracket", `{"requestId":"r-bracket","clientName":"ok-name"}]`, registrar.RejectInvalidJSON, ""},
		{"NotUTF8", "{\"requestId\":\"r-utf8\",\"clientName\":\"ok-name\",\"displayName\":\"Lab \xff Sync\"}", registrar.RejectInvalidCharacter, "displayName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := h.command("register", []byte(tt.body), "msg-"+tt.name, 1)
			if status != http.StatusOK {
				t.Fatalf("status %d: a malformed request must complete, not retry", status)
			}
			if ev := eventOf(t, out); ev.Type != registrar.EventRejected || ev.Reasons[0].Code != tt.code || ev.Reasons[0].Field != tt.field {
				t.Errorf("event = %+v, want rejected %s on %q", ev, tt.code, tt.field)
			}
		})
	}
	if app := h.app("appreg-ok-name"); app.ID != "" {
		t.Errorf("a malformed request registered %+v", app)
	}
}

// TestE2EOversizeRejectionIsPublished covers D3: a rejection listing one reason per bad member
// outgrew a Service Bus message, the publish failed, and the request was dead-lettered with no
// event at all.
func TestE2EOversizeRejectionIsPublished(t *testing.T) {
	h := newHarness(t, nil)
	var b strings.Builder
	b.WriteString(`{"requestId":"r-many","clientName":"many-members"`)
	for i := range 6000 {
		fmt.Fprintf(&b, `,"m%d":1`, i)
	}
	b.WriteString("}")
	status, out := h.command("register", []byte(b.String()), "r-many", 1)
	if status != http.StatusOK {
		t.Fatalf("status %d: %v", status, out.Logs)
	}
	var got *registrar.Event
	for _, e := range h.drainEvents() {
		if e.RequestID == "r-many" && e.Type == registrar.EventRejected {
			got = &e
		}
	}
	if got == nil {
		t.Fatal("the rejection was not published")
	}
	if len(got.Reasons) != registrar.MaxReasons || got.Reasons[registrar.MaxReasons-1].Code != registrar.RejectMoreReasons {
		t.Errorf("reasons = %d, last %+v; want %d ending in %s", len(got.Reasons), got.Reasons[len(got.Reasons)-1], registrar.MaxReasons, registrar.RejectMoreReasons)
	}
	if n := len(h.logs.String()); n > 256<<10 {
		t.Errorf("one rejection logged %d bytes", n)
	}
}

// TestE2EKeyVaultConflictLeavesNothingBehind covers D7: the Key Vault check used to run after
// the app and service principal were written, so a refused request left both behind.
func TestE2EKeyVaultConflictLeavesNothingBehind(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	kv, err := azsecrets.NewClient(h.emu.Endpoints().KeyVaultURL, h.credential(), &azsecrets.ClientOptions{
		ClientOptions: azcore.ClientOptions{Transport: h.emu.Client()}, DisableChallengeResourceVerification: true})
	if err != nil {
		t.Fatal(err)
	}
	someoneElses := "not appreg's"
	for _, name := range []string{"taken-client-secret", "gone-client-secret"} {
		if _, err := kv.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: &someoneElses}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.DeleteSecret(ctx, "gone-client-secret", nil); err != nil {
		t.Fatal(err)
	}
	for _, client := range []string{"taken", "gone"} {
		status, out := h.command("register", []byte(`{"requestId":"r-`+client+`","clientName":"`+client+`"}`), "r-"+client, 1)
		if status != http.StatusOK {
			t.Fatalf("%s: status %d %v", client, status, out.Logs)
		}
		if ev := eventOf(t, out); ev.Type != registrar.EventRejected || ev.Reasons[0].Code != registrar.RejectSecretConflict {
			t.Errorf("%s: event = %+v, want rejected %s", client, ev, registrar.RejectSecretConflict)
		}
		if app := h.app("appreg-" + client); app.ID != "" {
			t.Errorf("%s: a refused request left application %s behind", client, app.AppID)
		}
	}
}

// TestPreflight runs handler --check's checks against the local Azure: all pass as wired, and
// each broken permission or entity fails its own check, with the fix an operator needs.
func TestPreflight(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	for _, r := range preflight(ctx, h.checks, 10*time.Second) {
		if !r.OK {
			t.Errorf("check %q failed against a correctly wired local Azure: %s", r.Name, r.Error)
		}
	}
	if err := h.emu.Graph.InjectFault(graphemu.Fault{Operation: graphemu.OpListApplications, Status: http.StatusForbidden, Code: "Authorization_RequestDenied", Count: 1}); err != nil {
		t.Fatal(err)
	}
	if err := h.emu.KeyVault.InjectFault(keyvaultemu.Fault{Operation: "getSecrets", Status: http.StatusForbidden, Code: "Forbidden", Count: 1}); err != nil {
		t.Fatal(err)
	}
	failed := map[string]string{}
	for _, r := range preflight(ctx, h.checks, 10*time.Second) {
		if !r.OK {
			failed[r.Name] = r.Fix
		}
	}
	wantFix := map[string]string{"Microsoft Graph: read applications": "Application.ReadWrite.OwnedBy", "Key Vault: list secrets": "Key Vault Secrets Officer"}
	for prefix, fix := range wantFix {
		found := false
		for name, got := range failed {
			if strings.HasPrefix(name, prefix) {
				found = true
				if !strings.Contains(got, fix) {
					t.Errorf("check %q: fix %q does not name %q", name, got, fix)
				}
			}
		}
		if !found {
			t.Errorf("no failed check %q among %v", prefix, failed)
		}
	}
	if len(failed) != 2 {
		t.Errorf("failed checks %v, want exactly the two broken ones", failed)
	}
}
