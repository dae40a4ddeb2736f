package graphemu_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"appreg/emulator/entraemu"
	"appreg/emulator/graphemu"
)

var prefer = map[string]string{"Prefer": "create-if-missing"}

// TestSoftDelete follows an app through Entra's recycle bin: deleting it (and with it its
// service principal) keeps its uniqueName taken, restore brings it back, purge frees the name.
func TestSoftDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, tok := e.seededCaller(t, roleOwnedBy)
	upsert := func(status int) response {
		return e.do(t, request{method: "PATCH", path: "/v1.0/applications(uniqueName='appreg-gone')", token: tok, headers: prefer,
			body: `{"displayName":"gone","signInAudience":"AzureADMyOrg"}`}).must(t, status)
	}
	app := upsert(http.StatusCreated)
	id, appID := app.str("id"), app.str("appId")
	sp := e.do(t, request{method: "PATCH", path: "/v1.0/servicePrincipals(appId='" + appID + "')", token: tok, headers: prefer, body: `{}`}).must(t, http.StatusCreated)

	e.do(t, request{method: "DELETE", path: "/v1.0/applications/" + id, token: tok}).must(t, http.StatusNoContent)
	for _, path := range []string{"/v1.0/applications/" + id, "/v1.0/applications(uniqueName='appreg-gone')", "/v1.0/servicePrincipals/" + sp.str("id")} {
		e.do(t, request{method: "GET", path: path, token: tok}).must(t, http.StatusNotFound)
	}
	if got := e.do(t, request{method: "GET", path: "/v1.0/applications?$filter=uniqueName eq 'appreg-gone'", token: tok}).must(t, http.StatusOK).body["value"].([]any); len(got) != 0 {
		t.Errorf("a deleted app is listed: %v", got)
	}

	// In the recycle bin, both of them, with their deletion time.
	bin := e.do(t, request{method: "GET", path: "/v1.0/directory/deletedItems/microsoft.graph.application", token: tok}).must(t, http.StatusOK)
	items := bin.body["value"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["id"] != id || items[0].(map[string]any)["deletedDateTime"] == nil {
		t.Fatalf("deleted applications = %s", bin.raw)
	}
	if ctx := bin.str("@odata.context"); !strings.HasSuffix(ctx, "$metadata#directory/deletedItems/microsoft.graph.application") {
		t.Errorf("@odata.context %s", ctx)
	}
	if n := len(e.do(t, request{method: "GET", path: "/v1.0/directory/deletedItems/microsoft.graph.servicePrincipal", token: tok}).must(t, http.StatusOK).body["value"].([]any)); n != 1 {
		t.Errorf("%d deleted service principals, want the app's", n)
	}
	if typ := e.do(t, request{method: "GET", path: "/v1.0/directory/deletedItems/" + id, token: tok}).must(t, http.StatusOK).str("@odata.type"); typ != "#microsoft.graph.application" {
		t.Errorf("deleted item type %s", typ)
	}

	// The uniqueName stays taken, as Entra reports it: a 400 named only by its message.
	for _, r := range []response{
		upsert(http.StatusBadRequest),
		e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"again","uniqueName":"appreg-gone"}`}).must(t, http.StatusBadRequest),
	} {
		if code, msg := r.odataError(t); code != "Request_BadRequest" || msg != uniqueNameTaken {
			t.Errorf("re-create: %s %q", code, msg)
		}
	}

	// Restore: the same object, id and appId; its service principal stays deleted.
	restored := e.do(t, request{method: "POST", path: "/v1.0/directory/deletedItems/" + id + "/restore", token: tok}).must(t, http.StatusOK)
	if restored.str("id") != id || restored.str("appId") != appID || restored.str("@odata.type") != "#microsoft.graph.application" {
		t.Errorf("restored = %s", restored.raw)
	}
	e.do(t, request{method: "GET", path: "/v1.0/applications(uniqueName='appreg-gone')", token: tok}).must(t, http.StatusOK)
	upsert(http.StatusNoContent)

	// Delete and purge: the name is free, and a new app gets a new id.
	e.do(t, request{method: "DELETE", path: "/v1.0/applications/" + id, token: tok}).must(t, http.StatusNoContent)
	e.do(t, request{method: "DELETE", path: "/v1.0/directory/deletedItems/" + id, token: tok}).must(t, http.StatusNoContent)
	e.do(t, request{method: "DELETE", path: "/v1.0/directory/deletedItems/" + id, token: tok}).must(t, http.StatusNotFound)
	e.do(t, request{method: "POST", path: "/v1.0/directory/deletedItems/" + id + "/restore", token: tok}).must(t, http.StatusNotFound)
	if again := upsert(http.StatusCreated); again.str("id") == id {
		t.Error("a purged app came back")
	}
	st := e.srv.State()
	if len(st.DeletedItems) != 1 || st.DeletedItems[0].Type != "servicePrincipal" {
		t.Errorf("state's deleted items = %+v, want the first service principal", st.DeletedItems)
	}

	// After 30 days Entra purges what is left (the token is minted again on the later clock).
	e.clock.Advance(30*24*time.Hour + time.Second)
	_, tok = e.seededCaller(t, roleOwnedBy)
	e.do(t, request{method: "GET", path: "/v1.0/directory/deletedItems/" + sp.str("id"), token: tok}).must(t, http.StatusNotFound)
}

// TestObjectQuota: a principal without an admin role creates at most its quota of directory
// objects, soft-deleted ones included, then Graph answers Directory_QuotaExceeded.
func TestObjectQuota(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	spID, tok := e.seededCaller(t, roleOwnedBy)
	if q := e.control(t, "GET", "/_emu/graph/quota", "").body["objectQuota"]; q != 250.0 {
		t.Errorf("default quota %v, want Entra's 250", q)
	}
	e.control(t, "PUT", "/_emu/graph/quota", `{"objectQuota":3}`).must(t, http.StatusNoContent)
	create := func(name string) response {
		return e.do(t, request{method: "PATCH", path: "/v1.0/applications(uniqueName='" + name + "')", token: tok, headers: prefer, body: `{"displayName":"q"}`})
	}
	a := create("q-1").must(t, http.StatusCreated)
	e.do(t, request{method: "PATCH", path: "/v1.0/servicePrincipals(appId='" + a.str("appId") + "')", token: tok, headers: prefer, body: `{}`}).must(t, http.StatusCreated)
	create("q-2").must(t, http.StatusCreated)

	checkQuota := func(r response) {
		t.Helper()
		code, msg := r.must(t, http.StatusBadRequest).odataError(t)
		if code != "Directory_QuotaExceeded" || !strings.HasPrefix(msg, "The directory object quota limit for the Principal has been exceeded.") {
			t.Errorf("over quota: %s %q", code, msg)
		}
	}
	checkQuota(create("q-3"))
	checkQuota(e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"q"}`}))
	if n := e.srv.State().Created[spID]; n != 3 {
		t.Errorf("objects created = %d, want 3", n)
	}
	// Another principal has a quota of its own.
	other := e.caller(t, "another-principal", roleOwnedBy)
	e.do(t, request{method: "POST", path: "/v1.0/applications", token: other, body: `{"displayName":"o"}`}).must(t, http.StatusCreated)

	// Deleting is not enough: deleted objects count until they are purged.
	e.do(t, request{method: "DELETE", path: "/v1.0/applications/" + a.str("id"), token: tok}).must(t, http.StatusNoContent)
	checkQuota(create("q-3"))
	e.do(t, request{method: "DELETE", path: "/v1.0/directory/deletedItems/" + a.str("id"), token: tok}).must(t, http.StatusNoContent)
	create("q-3").must(t, http.StatusCreated)
}

// TestAppManagementPolicy: an administrator sets the tenant's default policy through Graph; Entra
// then refuses addPassword beyond it with the codes Microsoft's own tools match.
func TestAppManagementPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, tok := e.seededCaller(t, roleOwnedBy)
	admin := e.caller(t, "admin", "Policy.ReadWrite.ApplicationConfiguration")
	const path = "/v1.0/policies/defaultAppManagementPolicy"

	def := e.do(t, request{method: "GET", path: path, token: admin}).must(t, http.StatusOK)
	if def.str("id") != "00000000-0000-0000-0000-000000000000" || def.body["isEnabled"] != false {
		t.Errorf("default policy = %s", def.raw)
	}
	e.do(t, request{method: "GET", path: path, token: tok}).must(t, http.StatusForbidden)
	e.do(t, request{method: "PATCH", path: path, token: tok, body: `{"isEnabled":true}`}).must(t, http.StatusForbidden)
	e.do(t, request{method: "PATCH", path: path, token: admin, body: `{"isEnabled":true,"applicationRestrictions":{"passwordCredentials":[{"restrictionType":"passwordLifetime"}]}}`}).must(t, http.StatusBadRequest)

	id := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"p","signInAudience":"AzureADMyOrg"}`}).must(t, http.StatusCreated).str("id")
	addPassword := func(days int) response {
		end := e.clock.Now().Add(time.Duration(days) * 24 * time.Hour).Format(time.RFC3339)
		return e.do(t, request{method: "POST", path: "/v1.0/applications/" + id + "/addPassword", token: tok, body: `{"passwordCredential":{"endDateTime":"` + end + `"}}`})
	}
	refused := func(r response, wantCode string) {
		t.Helper()
		if code, msg := r.must(t, http.StatusBadRequest).odataError(t); code != wantCode || !strings.Contains(msg, "as per assigned policy") {
			t.Errorf("refusal: %s %q, want %s", code, msg, wantCode)
		}
	}

	e.do(t, request{method: "PATCH", path: path, token: admin, gzip: true, body: `{"isEnabled":true,"applicationRestrictions":{"passwordCredentials":[` +
		`{"restrictionType":"passwordLifetime","maxLifetime":"P90D","restrictForAppsCreatedAfterDateTime":null}],"keyCredentials":[]}}`}).must(t, http.StatusNoContent)
	refused(addPassword(91), "CredentialInvalidLifetimeAsPerAppPolicy")
	refused(e.do(t, request{method: "POST", path: "/v1.0/applications/" + id + "/addPassword", token: tok}), "CredentialInvalidLifetimeAsPerAppPolicy") // the 2-year default
	addPassword(90).must(t, http.StatusOK)
	if got := e.control(t, "GET", "/_emu/graph/policy", "").body; got["enabled"] != true || got["maxPasswordLifetime"] != "P90D" {
		t.Errorf("policy control reads %v", got)
	}

	// Restrictions apply to apps created after their date only.
	e.do(t, request{method: "PATCH", path: path, token: admin, body: `{"applicationRestrictions":{"passwordCredentials":[` +
		`{"restrictionType":"passwordAddition","maxLifetime":null,"restrictForAppsCreatedAfterDateTime":"2030-01-01T00:00:00Z"}]}}`}).must(t, http.StatusNoContent)
	addPassword(400).must(t, http.StatusOK)

	// The same through the control: secrets blocked outright.
	e.control(t, "PUT", "/_emu/graph/policy", `{"enabled":true,"blockPasswordAddition":true}`).must(t, http.StatusNoContent)
	refused(addPassword(1), "CredentialTypeNotAllowedAsPerAppPolicy")
	e.control(t, "PUT", "/_emu/graph/policy", `{"enabled":false,"blockPasswordAddition":true}`).must(t, http.StatusNoContent)
	addPassword(1).must(t, http.StatusOK)
	e.control(t, "PUT", "/_emu/graph/policy", `{"enabled":true,"maxPasswordLifetime":"P1X"}`).must(t, http.StatusBadRequest)

	e.srv.Reset()
	if p := e.srv.AppManagementPolicy(); p.Enabled || p.BlockPasswords || p.MaxPasswordLifetime != 0 {
		t.Errorf("after Reset: %+v", p)
	}
}

// TestWriteThrottling: directory writes are metered per calling app and tenant; past the bucket
// Graph answers 429 with a fractional Retry-After and says which limit it was.
func TestWriteThrottling(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, graphemu.Options{WriteQuota: graphemu.WriteQuota{Writes: 4, Window: time.Second}})
	_, tok := e.seededCaller(t, roleAll)
	create := func(token string) response {
		return e.do(t, request{method: "POST", path: "/v1.0/applications", token: token, body: `{"displayName":"w"}`})
	}
	for range 4 {
		create(tok).must(t, http.StatusCreated)
	}
	r := create(tok).must(t, http.StatusTooManyRequests)
	if code, msg := r.odataError(t); code != "TooManyRequests" || msg != "Please retry again later." {
		t.Errorf("429 body: %s %q", code, msg)
	}
	if inner := r.body["error"].(map[string]any)["innerError"].(map[string]any); inner["code"] != "429" {
		t.Errorf("innerError = %v", inner)
	}
	secs, err := strconv.ParseFloat(r.header.Get("Retry-After"), 64)
	if err != nil || secs <= 0 || secs > 0.25 || !strings.Contains(r.header.Get("Retry-After"), ".") {
		t.Errorf("Retry-After %q, want a fraction of the 0.25 s a write takes to refill", r.header.Get("Retry-After"))
	}
	if r.header.Get("x-ms-throttle-information") != "WriteLimitExceeded" || r.header.Get("x-ms-throttle-scope") == "" {
		t.Errorf("throttle headers %v", r.header)
	}
	// Reads are not writes, and another app has a bucket of its own.
	e.do(t, request{method: "GET", path: "/v1.0/applications", token: tok}).must(t, http.StatusOK)
	create(e.caller(t, "other", roleAll)).must(t, http.StatusCreated)
	time.Sleep(time.Duration(secs*float64(time.Second)) + 10*time.Millisecond)
	create(tok).must(t, http.StatusCreated)

	e.control(t, "PUT", "/_emu/graph/writequota", `{"writes":-1}`).must(t, http.StatusNoContent)
	for range 10 {
		create(tok).must(t, http.StatusCreated)
	}
}

// TestReplicasFlap: with several lagging replicas, a new app, a new password and a filtered list
// are each visible, then invisible again, before every replica has them; after MaxLag they stay.
func TestReplicasFlap(t *testing.T) {
	t.Parallel()
	const maxLag = 600 * time.Millisecond
	e := newEnvWith(t, graphemu.Options{Replication: graphemu.Replication{Replicas: 3, MinLag: 0, MaxLag: maxLag}})
	_, tok := e.seededCaller(t, roleAll)
	const n = 12
	type app struct{ id, appID, secret string }
	apps := make([]app, n)
	for i := range apps {
		a := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"flap","tags":["flap"]}`}).must(t, http.StatusCreated)
		apps[i].id, apps[i].appID = a.str("id"), a.str("appId")
	}
	// Passwords and service principals on the writable replica need the apps replicated.
	e.srv.Replicate()
	for i := range apps {
		e.do(t, request{method: "POST", path: "/v1.0/servicePrincipals", token: tok, body: `{"appId":"` + apps[i].appID + `"}`}).must(t, http.StatusCreated)
	}
	e.srv.Replicate()
	for i := range apps {
		apps[i].secret = e.do(t, request{method: "POST", path: "/v1.0/applications/" + apps[i].id + "/addPassword", token: tok}).must(t, http.StatusOK).str("secretText")
	}
	// A new app, a list with a filter and a new secret, seen through rounds of reads.
	fresh := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"flap","tags":["fresh"]}`}).must(t, http.StatusCreated).str("id")
	created := time.Now()
	var appFlaps, listFlaps, secretFlaps int
	seenApp, seenList := false, false
	seenSecret := make([]bool, n)
	for time.Since(created) < maxLag {
		visible := e.do(t, request{method: "GET", path: "/v1.0/applications/" + fresh, token: tok}).status == http.StatusOK
		if seenApp && !visible {
			appFlaps++
		}
		seenApp = seenApp || visible
		listed := len(e.do(t, request{method: "GET", path: "/v1.0/applications?$filter=tags/any(t:t eq 'fresh')", token: tok}).must(t, http.StatusOK).body["value"].([]any)) == 1
		if seenList && !listed {
			listFlaps++
		}
		seenList = seenList || listed
		for i, a := range apps {
			_, err := e.srv.AuthenticateClient(t.Context(), a.appID, a.secret)
			if err != nil && !errors.Is(err, entraemu.ErrInvalidSecret) {
				t.Fatalf("AuthenticateClient: %v", err)
			}
			if seenSecret[i] && err != nil {
				secretFlaps++
			}
			seenSecret[i] = seenSecret[i] || err == nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(maxLag)
	t.Logf("flaps: app %d, list %d, secrets %d", appFlaps, listFlaps, secretFlaps)
	if secretFlaps == 0 {
		t.Error("no new secret was refused after it had been accepted")
	}
	if appFlaps+listFlaps == 0 {
		t.Error("the new app never disappeared again after it had been seen")
	}
	// Settled: every replica has everything.
	for range 10 {
		e.do(t, request{method: "GET", path: "/v1.0/applications/" + fresh, token: tok}).must(t, http.StatusOK)
		for _, a := range apps {
			if _, err := e.srv.AuthenticateClient(t.Context(), a.appID, a.secret); err != nil {
				t.Fatalf("after the lag: %v", err)
			}
		}
	}
}
