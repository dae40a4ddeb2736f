package keyvaultemu_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"appreg/emulator/keyvaultemu"
)

func TestControlsJSON(t *testing.T) {
	srv, clk := newRESTServer(t, nil)
	auth := bearer(t, srv)
	const value = "sup3r-s3cret-do-not-show"
	call(t, srv, "PUT", "/secrets/app-client-secret?api-version=7.4", auth,
		`{"value":"`+value+`","contentType":"text/plain","tags":{"managed-by":"appreg"},"attributes":{"exp":1787776000}}`)
	clk.Advance(time.Second)
	call(t, srv, "PUT", "/secrets/app-client-secret?api-version=7.4", auth, `{"value":"`+value+`-2"}`)
	call(t, srv, "PUT", "/secrets/old?api-version=7.4", auth, `{"value":"`+value+`"}`)
	call(t, srv, "DELETE", "/secrets/old?api-version=7.4", auth, "")

	t.Run("StateHasMetadataNeverValues", func(t *testing.T) {
		resp, body := call(t, srv, "GET", "/_emu/keyvault/state", "", "")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if strings.Contains(string(body), value) {
			t.Fatal("/_emu/keyvault/state exposes a secret value")
		}
		var got keyvaultemu.State
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		exp := time.Unix(1787776000, 0).UTC()
		want := keyvaultemu.State{
			Secrets: []keyvaultemu.SecretState{
				{Name: "app-client-secret", State: "active", Latest: "00000000000000000000000000000002", Versions: []keyvaultemu.VersionState{
					{Version: "00000000000000000000000000000001", Enabled: true, ContentType: "text/plain", Tags: map[string]string{"managed-by": "appreg"},
						Expires: &exp, Created: epoch, Updated: epoch},
					{Version: "00000000000000000000000000000002", Enabled: true, Created: epoch.Add(time.Second), Updated: epoch.Add(time.Second)},
				}},
				{Name: "old", State: "deleting", Latest: "00000000000000000000000000000003",
					DeletedDate: ptr(epoch.Add(time.Second)), ScheduledPurgeDate: ptr(epoch.Add(time.Second + 90*24*time.Hour)),
					Versions: []keyvaultemu.VersionState{{Version: "00000000000000000000000000000003", Enabled: true, Created: epoch.Add(time.Second), Updated: epoch.Add(time.Second)}}},
			},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("state (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, srv.State()); diff != "" {
			t.Errorf("State (-want +got):\n%s", diff)
		}
	})

	t.Run("StatsCountCalls", func(t *testing.T) {
		resp, body := call(t, srv, "GET", "/_emu/keyvault/stats", "", "")
		var got keyvaultemu.Stats
		if err := json.Unmarshal(body, &got); resp.StatusCode != 200 || err != nil {
			t.Fatalf("GET stats = %d %s", resp.StatusCode, body)
		}
		want := keyvaultemu.Stats{Operations: map[string]int{"setSecret": 3, "deleteSecret": 1}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("stats (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, srv.Stats()); diff != "" {
			t.Errorf("Stats (-want +got):\n%s", diff)
		}
	})

	t.Run("FaultsRoundTrip", func(t *testing.T) {
		resp, body := call(t, srv, "POST", "/_emu/keyvault/faults", "", `{"operation":"getSecret","status":500,"code":"InternalServerError","message":"boom","count":1}`)
		if resp.StatusCode != 204 {
			t.Fatalf("POST /_emu/keyvault/faults = %d %s", resp.StatusCode, body)
		}
		if _, body := call(t, srv, "GET", "/_emu/keyvault/faults", "", ""); !strings.Contains(string(body), `"operation":"getSecret"`) {
			t.Fatalf("GET /_emu/keyvault/faults = %s", body)
		}
		resp, body = call(t, srv, "GET", "/secrets/app-client-secret?api-version=7.4", auth, "")
		if resp.StatusCode != 500 || string(body) != `{"error":{"code":"InternalServerError","message":"boom"}}` {
			t.Errorf("faulted get = %d %s", resp.StatusCode, body)
		}
		if resp, _ := call(t, srv, "GET", "/secrets/app-client-secret?api-version=7.4", auth, ""); resp.StatusCode != 200 {
			t.Errorf("the fault had count 1, second call = %d", resp.StatusCode)
		}
		call(t, srv, "POST", "/_emu/keyvault/faults", "", `{"operation":"*","latencyMs":1}`)
		_, body = call(t, srv, "GET", "/_emu/keyvault/faults", "", "")
		if string(body) != `{"faults":[{"operation":"*","latencyMs":1}]}` {
			t.Errorf("GET /_emu/keyvault/faults = %s", body)
		}
		if resp, _ := call(t, srv, "DELETE", "/_emu/keyvault/faults", "", ""); resp.StatusCode != 204 || len(srv.Faults()) != 0 {
			t.Errorf("DELETE /_emu/keyvault/faults = %d, %d left", resp.StatusCode, len(srv.Faults()))
		}
	})

	t.Run("Throttle", func(t *testing.T) {
		call(t, srv, "POST", "/_emu/keyvault/throttle", "", `{"operation":"getSecrets","count":1,"retryAfterSeconds":2}`)
		resp, body := call(t, srv, "GET", "/secrets?api-version=7.4", auth, "")
		var e struct{ Error struct{ Code string } }
		_ = json.Unmarshal(body, &e)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" || e.Error.Code != "Throttled" {
			t.Errorf("throttled = %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	})

	t.Run("BadControls", func(t *testing.T) {
		for _, tt := range []struct{ method, path, body string }{
			{"POST", "/_emu/keyvault/faults", `{"operation":"setsecret","status":500}`},
			{"POST", "/_emu/keyvault/faults", `{"operation":"setSecret","status":200}`},
			{"POST", "/_emu/keyvault/faults", `{"operation":"setSecret"}`},
			{"POST", "/_emu/keyvault/faults", `nope`},
			{"GET", "/_emu/keyvault/nothing", ""},
		} {
			if resp, body := call(t, srv, tt.method, tt.path, "", tt.body); resp.StatusCode < 400 || !strings.Contains(string(body), `"error"`) {
				t.Errorf("%s %s %s = %d %s", tt.method, tt.path, tt.body, resp.StatusCode, body)
			}
		}
	})

	t.Run("Reset", func(t *testing.T) {
		if resp, _ := call(t, srv, "POST", "/_emu/keyvault/reset", "", ""); resp.StatusCode != 204 {
			t.Fatalf("reset = %d", resp.StatusCode)
		}
		if st, stats := srv.State(), srv.Stats(); len(st.Secrets) != 0 || len(stats.Operations) != 0 {
			t.Errorf("after reset: %+v %+v", st, stats)
		}
		if resp, _ := call(t, srv, "PUT", "/secrets/old?api-version=7.4", auth, `{"value":"v"}`); resp.StatusCode != 200 {
			t.Errorf("a reset frees deleted names, set = %d", resp.StatusCode)
		}
	})
}

func TestFaultMatching(t *testing.T) {
	srv, _ := newRESTServer(t, nil)
	auth := bearer(t, srv)
	call(t, srv, "PUT", "/secrets/s?api-version=7.4", auth, `{"value":"v"}`)
	// The first matching fault wins; a spent one gives way to the next.
	for _, f := range []keyvaultemu.Fault{
		{Operation: "getSecret", Status: 404, Count: 1},
		{Operation: "*", Status: 503, Count: 2},
		{Operation: "getSecret", Status: 409, Code: "Conflict", Count: 0},
	} {
		if err := srv.InjectFault(f); err != nil {
			t.Fatal(err)
		}
	}
	var got []int
	for _, path := range []string{"/secrets/s", "/secrets", "/secrets/s", "/secrets/s", "/secrets"} {
		resp, _ := call(t, srv, "GET", path+"?api-version=7.4", auth, "")
		got = append(got, resp.StatusCode)
	}
	if diff := cmp.Diff([]int{404, 503, 503, 409, 200}, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if n := len(srv.Faults()); n != 1 {
		t.Errorf("%d faults armed, want the one without a count", n)
	}
	if err := srv.InjectFault(keyvaultemu.Fault{Operation: "nope", Status: 500}); err == nil {
		t.Error("an unknown operation must be refused")
	}
}

func TestOptions(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts keyvaultemu.Options
	}{
		{"RetentionTooShort", keyvaultemu.Options{RecoverableDays: 6}},
		{"RetentionTooLong", keyvaultemu.Options{RecoverableDays: 91}},
		{"AuthorityWithEquals", keyvaultemu.Options{AuthorityURL: "https://x/?a=b"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if srv, err := keyvaultemu.NewServer(&tt.opts); err == nil {
				srv.Close()
				t.Error("NewServer accepted bad options")
			}
		})
	}
	srv, err := keyvaultemu.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !strings.HasPrefix(srv.URL(), "https://127.0.0.1:") || !strings.HasSuffix(srv.URL(), "/") || len(srv.TenantID()) != 36 {
		t.Errorf("defaults: URL %s tenant %s", srv.URL(), srv.TenantID())
	}
}

func ptr[T any](v T) *T { return &v }
