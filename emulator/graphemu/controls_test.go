package graphemu_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"appreg/emulator/entraemu"
	"appreg/emulator/graphemu"
)

// control calls the /_emu/graph/ API as a test in another process would.
func (e *testEnv) control(tb testing.TB, method, path, body string) response {
	tb.Helper()
	return e.do(tb, request{method: method, path: path, body: body})
}

func TestFaultsAndThrottling(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, tok := e.seededCaller(t, roleAll)
	id := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"f"}`}).must(t, http.StatusCreated).str("id")
	addPassword := func() response {
		return e.do(t, request{method: "POST", path: "/v1.0/applications/" + id + "/addPassword", token: tok})
	}

	e.control(t, "POST", "/_emu/graph/faults", `{"operation":"addPassword","status":503,"count":1}`).must(t, http.StatusNoContent)
	r := addPassword().must(t, http.StatusServiceUnavailable)
	if code, _ := r.odataError(t); code != "ServiceUnavailable" {
		t.Errorf("code %s", code)
	}
	addPassword().must(t, http.StatusOK)

	e.control(t, "POST", "/_emu/graph/faults", `{"operation":"addPassword","status":400,"code":"CredentialPolicyViolation","message":"Password lifetime exceeds the policy.","count":1}`).must(t, http.StatusNoContent)
	if code, msg := addPassword().must(t, http.StatusBadRequest).odataError(t); code != "CredentialPolicyViolation" || msg != "Password lifetime exceeds the policy." {
		t.Errorf("custom fault = %s %q", code, msg)
	}

	e.control(t, "POST", "/_emu/graph/throttle", `{"operation":"createApplication","retryAfterSeconds":2,"count":2}`).must(t, http.StatusNoContent)
	for range 2 {
		r := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"t"}`}).must(t, http.StatusTooManyRequests)
		if code, _ := r.odataError(t); code != "TooManyRequests" || r.header.Get("Retry-After") != "2" {
			t.Errorf("429: code %s Retry-After %q", code, r.header.Get("Retry-After"))
		}
	}
	e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"t"}`}).must(t, http.StatusCreated)

	// Until cleared, on every operation.
	e.control(t, "POST", "/_emu/graph/faults", `{"status":500}`).must(t, http.StatusNoContent)
	listed := e.control(t, "GET", "/_emu/graph/faults", "").must(t, http.StatusOK)
	if f, _ := listed.body["faults"].([]any); len(f) != 1 {
		t.Errorf("faults = %s", listed.raw)
	}
	e.do(t, request{method: "GET", path: "/v1.0/applications", token: tok}).must(t, http.StatusInternalServerError).odataError(t)
	e.do(t, request{method: "GET", path: "/v1.0/servicePrincipals", token: tok}).must(t, http.StatusInternalServerError)
	e.control(t, "DELETE", "/_emu/graph/faults", "").must(t, http.StatusNoContent)
	e.do(t, request{method: "GET", path: "/v1.0/applications", token: tok}).must(t, http.StatusOK)

	// Latency alone delays the real answer.
	e.control(t, "POST", "/_emu/graph/faults", `{"operation":"getApplication","latencyMs":150,"count":1}`).must(t, http.StatusNoContent)
	start := time.Now()
	e.do(t, request{method: "GET", path: "/v1.0/applications/" + id, token: tok}).must(t, http.StatusOK)
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("latency fault took %v", took)
	}

	stats := e.control(t, "GET", "/_emu/graph/stats", "").must(t, http.StatusOK)
	ops := stats.body["operations"].(map[string]any)
	if ops["addPassword"] != 3.0 || ops["createApplication"] != 4.0 || stats.body["faultsInjected"] != 7.0 {
		t.Errorf("stats = %s", stats.raw)
	}

	for _, body := range []string{`{"operation":"fly","status":500}`, `{"status":200}`, `{"operation":"addPassword"}`, `{"colour":1}`} {
		e.control(t, "POST", "/_emu/graph/faults", body).must(t, http.StatusBadRequest)
	}
	e.control(t, "GET", "/_emu/graph/nothing", "").must(t, http.StatusNotFound)

	e.control(t, "POST", "/_emu/graph/reset", "").must(t, http.StatusNoContent)
	if st := e.srv.Stats(); len(st.Operations) != 0 || st.Faults != 0 {
		t.Errorf("stats after reset = %+v", st)
	}
}

// TestConcurrentCredentialEdits: Graph fails overlapping credential edits on one app with a 500,
// which is why the handler serialises them. Every addPassword is slowed so the two overlap.
func TestConcurrentCredentialEdits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, tok := e.seededCaller(t, roleAll)
	id := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"c","signInAudience":"AzureADMyOrg"}`}).must(t, http.StatusCreated).str("id")
	if err := e.srv.InjectFault(graphemu.Fault{Operation: graphemu.OpAddPassword, Latency: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	for i := range statuses {
		wg.Go(func() {
			statuses[i] = e.do(t, request{method: "POST", path: "/v1.0/applications/" + id + "/addPassword", token: tok}).status
		})
	}
	wg.Wait()
	slices.Sort(statuses)
	if !slices.Equal(statuses, []int{200, 500}) {
		t.Errorf("statuses = %v, want one 200 and one 500", statuses)
	}
	if n := e.srv.EditConflicts(); n != 1 {
		t.Errorf("EditConflicts() = %d, want 1", n)
	}
	e.srv.ClearFaults()
	e.do(t, request{method: "POST", path: "/v1.0/applications/" + id + "/addPassword", token: tok}).must(t, http.StatusOK)
}

func TestReplicationLag(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, tok := e.seededCaller(t, roleOwnedBy)
	old := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"old","signInAudience":"AzureADMyOrg"}`}).must(t, http.StatusCreated)
	e.do(t, request{method: "POST", path: "/v1.0/servicePrincipals", token: tok, body: `{"appId":"` + old.str("appId") + `"}`}).must(t, http.StatusCreated)

	// An hour of lag on every replica: nothing written below replicates until Replicate.
	e.control(t, "PUT", "/_emu/graph/replication", `{"replicas":2,"minLagMs":3600000,"maxLagMs":3600000}`).must(t, http.StatusNoContent)
	if got := e.control(t, "GET", "/_emu/graph/replication", "").body; got["maxLagMs"] != 3600000.0 || got["replicas"] != 2.0 {
		t.Errorf("replication = %v", got)
	}
	e.control(t, "PUT", "/_emu/graph/replication", `{"minLagMs":2,"maxLagMs":1}`).must(t, http.StatusBadRequest)
	prefer := map[string]string{"Prefer": "create-if-missing"}
	fresh := e.do(t, request{method: "PATCH", path: "/v1.0/applications(uniqueName='fresh')", token: tok, headers: prefer,
		body: `{"displayName":"fresh","signInAudience":"AzureADMyOrg"}`}).must(t, http.StatusCreated)
	id, appID := fresh.str("id"), fresh.str("appId")

	notFound := []request{
		{method: "GET", path: "/v1.0/applications/" + id},
		{method: "GET", path: "/v1.0/applications(appId='" + appID + "')"},
		{method: "PATCH", path: "/v1.0/applications/" + id, body: `{"notes":"x"}`},
		{method: "POST", path: "/v1.0/applications/" + id + "/addPassword"},
	}
	for _, r := range notFound {
		r.token = tok
		if code, _ := e.do(t, r).must(t, http.StatusNotFound).odataError(t); code != "Request_ResourceNotFound" {
			t.Errorf("%s %s: code %s", r.method, r.path, code)
		}
	}
	checkNoBackingApp(t, e.do(t, request{method: "POST", path: "/v1.0/servicePrincipals", token: tok, body: `{"appId":"` + appID + `"}`}).must(t, http.StatusBadRequest), appID)
	checkNoBackingApp(t, e.do(t, request{method: "PATCH", path: "/v1.0/servicePrincipals(appId='" + appID + "')", token: tok, headers: prefer, body: `{}`}).must(t, http.StatusBadRequest), appID)
	// The upsert is served by the writable replica, so a retried upsert converges.
	e.do(t, request{method: "PATCH", path: "/v1.0/applications(uniqueName='fresh')", token: tok, headers: prefer, body: `{"displayName":"fresh"}`}).must(t, http.StatusNoContent)
	if _, err := e.srv.AuthenticateClient(t.Context(), appID, "anything"); !errors.Is(err, entraemu.ErrUnknownClient) {
		t.Errorf("AuthenticateClient on a lagging app: %v, want ErrUnknownClient", err)
	}

	// A new password on a replicated app: Entra does not accept it and reads do not list it.
	pw := e.do(t, request{method: "POST", path: "/v1.0/applications/" + old.str("id") + "/addPassword", token: tok}).must(t, http.StatusOK)
	if _, err := e.srv.AuthenticateClient(t.Context(), old.str("appId"), pw.str("secretText")); !errors.Is(err, entraemu.ErrInvalidSecret) {
		t.Errorf("lagging password: %v, want ErrInvalidSecret", err)
	}
	if creds := e.do(t, request{method: "GET", path: "/v1.0/applications/" + old.str("id"), token: tok}).must(t, http.StatusOK).body["passwordCredentials"]; len(creds.([]any)) != 0 {
		t.Errorf("a lagging replica lists the new password: %v", creds)
	}

	e.control(t, "POST", "/_emu/graph/replicate", "").must(t, http.StatusNoContent)
	e.do(t, request{method: "GET", path: "/v1.0/applications/" + id, token: tok}).must(t, http.StatusOK)
	e.do(t, request{method: "PATCH", path: "/v1.0/servicePrincipals(appId='" + appID + "')", token: tok, headers: prefer, body: `{}`}).must(t, http.StatusCreated)
	if p, err := e.srv.AuthenticateClient(t.Context(), old.str("appId"), pw.str("secretText")); err != nil || p.AppID != old.str("appId") {
		t.Errorf("after replication: %+v %v", p, err)
	}

	// Lag switched off: new objects are visible at once.
	if err := e.srv.SetReplication(graphemu.Replication{}); err != nil {
		t.Fatal(err)
	}
	now := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"now"}`}).must(t, http.StatusCreated)
	e.do(t, request{method: "GET", path: "/v1.0/applications/" + now.str("id"), token: tok}).must(t, http.StatusOK)
}

func TestStateInspectionAndReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	spID, tok := e.seededCaller(t, roleOwnedBy)
	miClient, miObject := e.srv.SeedManagedIdentity([]string{roleOwnedBy})
	app := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"s","tags":["appreg:managed"]}`}).must(t, http.StatusCreated)
	pw := e.do(t, request{method: "POST", path: "/v1.0/applications/" + app.str("id") + "/addPassword", token: tok, body: `{"passwordCredential":{"displayName":"k"}}`}).must(t, http.StatusOK)
	e.do(t, request{method: "POST", path: "/v1.0/servicePrincipals", token: tok, body: `{"appId":"` + app.str("appId") + `"}`}).must(t, http.StatusCreated)

	st := e.control(t, "GET", "/_emu/graph/state", "").must(t, http.StatusOK)
	checkNoSecrets(t, []string{pw.str("secretText")}, string(st.raw))
	if strings.Contains(string(st.raw), "secretText") {
		t.Error("state carries a secretText field")
	}
	snap := e.srv.State()
	if len(snap.Applications) != 2 || len(snap.ServicePrincipals) != 3 {
		t.Fatalf("state = %s", st.raw)
	}
	a := snap.Applications[1]
	if a.ID != app.str("id") || !slices.Equal(a.Tags, []string{"appreg:managed"}) || !slices.Equal(a.Owners, []string{spID}) ||
		len(a.Passwords) != 1 || a.Passwords[0].KeyID != pw.str("keyId") || a.Passwords[0].Hint != pw.str("hint") || a.Passwords[0].DisplayName != "k" {
		t.Errorf("app state = %+v", a)
	}
	mi := snap.ServicePrincipals[1]
	if mi.AppID != miClient || mi.ID != miObject || mi.Type != "ManagedIdentity" || !slices.Equal(mi.Roles, []string{roleOwnedBy}) {
		t.Errorf("managed identity state = %+v", mi)
	}

	e.control(t, "POST", "/_emu/graph/reset", "").must(t, http.StatusNoContent)
	snap = e.srv.State()
	if len(snap.Applications) != 1 || !snap.Applications[0].Seeded || len(snap.ServicePrincipals) != 2 {
		t.Errorf("after reset = %+v", snap)
	}
	// The seeded caller still works.
	e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"again"}`}).must(t, http.StatusCreated)
}

func TestManagedIdentityLookup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.srv.ManagedIdentity(ctx, ""); !errors.Is(err, entraemu.ErrUnknownClient) {
		t.Errorf("no identity seeded: %v", err)
	}
	sysClient, sysObject := e.srv.SeedManagedIdentity([]string{roleOwnedBy})
	userClient, _ := e.srv.SeedManagedIdentity(nil)
	appClient, _, _, _, err := e.srv.SeedClient("not an identity", nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		clientID string
		want     string
		wantErr  error
	}{
		{"SystemAssigned", "", sysClient, nil},
		{"SystemByClientID", sysClient, sysClient, nil},
		{"UserAssigned", userClient, userClient, nil},
		{"AppIsNoIdentity", appClient, "", entraemu.ErrUnknownClient},
		{"Unknown", "nope", "", entraemu.ErrUnknownClient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := e.srv.ManagedIdentity(ctx, tt.clientID)
			if !errors.Is(err, tt.wantErr) || p.AppID != tt.want {
				t.Errorf("ManagedIdentity(%q) = %+v, %v", tt.clientID, p, err)
			}
		})
	}
	if p, _ := e.srv.ManagedIdentity(ctx, ""); p.ObjectID != sysObject || !slices.Equal(p.Roles, []string{roleOwnedBy}) {
		t.Errorf("system identity = %+v", p)
	}
}
