package graphemu_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestAddPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, tok := e.seededCaller(t, roleOwnedBy)
	app := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"p","signInAudience":"AzureADMyOrg"}`}).must(t, http.StatusCreated)
	id, appID := app.str("id"), app.str("appId")

	tests := []struct {
		name      string
		path      string
		body      string
		gzip      bool
		wantName  any
		wantStart string
		wantEnd   string
	}{
		{"ByIDDefaults", "/v1.0/applications/" + id + "/addPassword", `{"passwordCredential":{"displayName":"Password friendly name"}}`, false,
			"Password friendly name", "2026-03-01T12:00:00.0000000Z", "2028-03-01T12:00:00.0000000Z"},
		{"ByAppIDGzip", "/v1.0/applications(appId='" + appID + "')/addPassword", `{"passwordCredential":{"displayName":"rotated","endDateTime":"2026-05-30T12:00:00Z"}}`, true,
			"rotated", "2026-03-01T12:00:00.0000000Z", "2026-05-30T12:00:00.0000000Z"},
		{"ExplicitStart", "/v1.0/applications/" + id + "/addPassword", `{"passwordCredential":{"startDateTime":"2026-04-01T00:00:00.1234567Z","endDateTime":"2026-07-01T00:00:00+02:00"}}`, false,
			nil, "2026-04-01T00:00:00.1234567Z", "2026-06-30T22:00:00.0000000Z"},
		{"EmptyBody", "/v1.0/applications/" + id + "/addPassword", ``, false,
			nil, "2026-03-01T12:00:00.0000000Z", "2028-03-01T12:00:00.0000000Z"},
	}
	var secrets []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, request{method: "POST", path: tt.path, token: tok, body: tt.body, gzip: tt.gzip}).must(t, http.StatusOK)
			var keys []string
			for k := range r.body {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if want := []string{"@odata.context", "customKeyIdentifier", "displayName", "endDateTime", "hint", "keyId", "secretText", "startDateTime"}; !slices.Equal(keys, want) {
				t.Errorf("keys = %q, want %q", keys, want)
			}
			secret := r.str("secretText")
			if len(secret) != 40 || secret[3:6] != "8Q~" || r.str("hint") != secret[:3] {
				t.Errorf("secretText has %d chars, hint %q; want 40 chars like Entra's and the first three as hint", len(secret), r.str("hint"))
			}
			if uuid.Validate(r.str("keyId")) != nil || r.body["displayName"] != tt.wantName {
				t.Errorf("keyId %q displayName %v", r.str("keyId"), r.body["displayName"])
			}
			if r.str("startDateTime") != tt.wantStart || r.str("endDateTime") != tt.wantEnd {
				t.Errorf("start %s end %s, want %s %s", r.str("startDateTime"), r.str("endDateTime"), tt.wantStart, tt.wantEnd)
			}
			if !strings.HasSuffix(r.str("@odata.context"), "/v1.0/$metadata#microsoft.graph.passwordCredential") {
				t.Errorf("@odata.context = %q", r.str("@odata.context"))
			}
			secrets = append(secrets, secret)
		})
	}

	got := e.do(t, request{method: "GET", path: "/v1.0/applications/" + id, token: tok}).must(t, http.StatusOK)
	creds, _ := got.body["passwordCredentials"].([]any)
	if len(creds) != len(tests) {
		t.Fatalf("app has %d passwords, want %d", len(creds), len(tests))
	}
	for _, c := range creds {
		m := c.(map[string]any)
		if v, present := m["secretText"]; !present || v != nil || m["hint"] == "" || m["keyId"] == "" {
			// Name the credential, never print it: a failing read is one that carries the secret.
			t.Errorf("read credential keyId %v: secretText present=%v null=%v, hint set=%v; want present and null", m["keyId"], present, v == nil, m["hint"] != "")
		}
	}
	checkNoSecrets(t, secrets, string(got.raw), e.logs.String(), mustJSON(t, e.srv.State()))

	for _, body := range []string{
		`{"passwordCredential":{"endDateTime":"tomorrow"}}`,
		`{"passwordCredential":{"startDateTime":"2026-05-01T00:00:00Z","endDateTime":"2026-04-01T00:00:00Z"}}`,
		`{"passwordCredential":`,
	} {
		r := e.do(t, request{method: "POST", path: "/v1.0/applications/" + id + "/addPassword", token: tok, body: body}).must(t, http.StatusBadRequest)
		r.odataError(t)
	}
	e.do(t, request{method: "POST", path: "/v1.0/applications/" + uuid.NewString() + "/addPassword", token: tok}).must(t, http.StatusNotFound)
}

func TestRemovePassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, tok := e.seededCaller(t, roleOwnedBy)
	id := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"p"}`}).must(t, http.StatusCreated).str("id")
	keyID := e.do(t, request{method: "POST", path: "/v1.0/applications/" + id + "/addPassword", token: tok}).must(t, http.StatusOK).str("keyId")
	path := "/v1.0/applications/" + id + "/removePassword"

	e.do(t, request{method: "POST", path: path, token: tok, gzip: true, body: `{"keyId":"` + keyID + `"}`}).must(t, http.StatusNoContent)
	again := e.do(t, request{method: "POST", path: path, token: tok, body: `{"keyId":"` + keyID + `"}`}).must(t, http.StatusBadRequest)
	if code, msg := again.odataError(t); code != "Request_BadRequest" || msg != "No password credential found with keyId "+keyID+"." {
		t.Errorf("second removal: %s %q", code, msg)
	}
	for _, body := range []string{`{"keyId":"not-a-guid"}`, `{}`, ``} {
		e.do(t, request{method: "POST", path: path, token: tok, body: body}).must(t, http.StatusBadRequest).odataError(t)
	}
	if n := len(e.srv.State().Applications[1].Passwords); n != 0 {
		t.Errorf("%d passwords left", n)
	}
}

func TestPersonalAccountPasswordCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, tok := e.seededCaller(t, roleAll)
	tests := []struct {
		audience string
		allowed  int
	}{
		{"AzureADandPersonalMicrosoftAccount", 2},
		{"PersonalMicrosoftAccount", 2},
		{"AzureADMyOrg", 5},
		{"AzureADMultipleOrgs", 5},
	}
	for _, tt := range tests {
		t.Run(tt.audience, func(t *testing.T) {
			id := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok,
				body: `{"displayName":"cap","signInAudience":"` + tt.audience + `"}`}).must(t, http.StatusCreated).str("id")
			for range tt.allowed {
				e.do(t, request{method: "POST", path: "/v1.0/applications/" + id + "/addPassword", token: tok}).must(t, http.StatusOK)
			}
			if tt.allowed > 2 {
				// Opening a multi-secret app to personal accounts is refused as well.
				r := e.do(t, request{method: "PATCH", path: "/v1.0/applications/" + id, token: tok, body: `{"signInAudience":"PersonalMicrosoftAccount"}`})
				if code, _ := r.must(t, http.StatusBadRequest).odataError(t); code != "TooManyAppPasswords" {
					t.Errorf("audience change: code %s", code)
				}
				return
			}
			r := e.do(t, request{method: "POST", path: "/v1.0/applications/" + id + "/addPassword", token: tok}).must(t, http.StatusBadRequest)
			if code, _ := r.odataError(t); code != "TooManyAppPasswords" {
				t.Errorf("code = %s, want TooManyAppPasswords", code)
			}
		})
	}
}

// checkNoSecrets fails if any issued secret value appears in the texts.
func checkNoSecrets(tb testing.TB, secrets []string, texts ...string) {
	tb.Helper()
	for _, s := range secrets {
		for i, text := range texts {
			if s != "" && strings.Contains(text, s) {
				tb.Errorf("a secret value appears in text #%d", i)
			}
		}
	}
}
