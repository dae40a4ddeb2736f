package graphemu_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestCreateAndGetApplication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, tok := e.seededCaller(t, roleOwnedBy)

	// The documented request of "Create application", compressed as kiota sends it.
	created := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, gzip: true,
		body:    `{"@odata.type":"#microsoft.graph.application","displayName":"Display name","tags":["appreg:managed"],"notes":"n","web":{"redirectUris":["https://app.example.org/cb"]}}`,
		headers: map[string]string{"client-request-id": "c-1"},
	}).must(t, http.StatusCreated)

	if ct := created.header.Get("Content-Type"); ct != "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if created.header.Get("client-request-id") != "c-1" || created.header.Get("request-id") == "" || created.header.Get("x-ms-ags-diagnostic") == "" {
		t.Errorf("headers = %v", created.header)
	}
	id, appID := created.str("id"), created.str("appId")
	if uuid.Validate(id) != nil || uuid.Validate(appID) != nil || id == appID {
		t.Fatalf("id %q appId %q", id, appID)
	}
	if got, want := created.str("@odata.context"), e.srv.URL()+"/v1.0/$metadata#applications/$entity"; got != want {
		t.Errorf("@odata.context = %q, want %q", got, want)
	}
	if created.str("createdDateTime") != "2026-03-01T12:00:00Z" || created.str("displayName") != "Display name" ||
		created.str("notes") != "n" || created.str("signInAudience") != "AzureADandPersonalMicrosoftAccount" ||
		created.str("publisherDomain") == "" || created.body["uniqueName"] != nil {
		t.Errorf("created = %s", created.raw)
	}
	if pc, _ := created.body["passwordCredentials"].([]any); pc == nil || len(pc) != 0 {
		t.Errorf("passwordCredentials = %v, want []", created.body["passwordCredentials"])
	}
	web, _ := created.body["web"].(map[string]any)
	if uris, _ := web["redirectUris"].([]any); len(uris) != 1 || web["implicitGrantSettings"] == nil {
		t.Errorf("web = %v: redirectUris set, implicitGrantSettings kept", web)
	}
	if _, ok := created.body["@odata.type"]; ok {
		t.Error("response echoes @odata.type")
	}

	for _, path := range []string{
		"/v1.0/applications/" + id,
		"/v1.0/applications(appId='" + appID + "')",
		"/v1.0/applications(appId=%27" + appID + "%27)",
		"/v1.0/applications/" + strings.ToUpper(id),
	} {
		got := e.do(t, request{method: "GET", path: path, token: tok}).must(t, http.StatusOK)
		if got.str("id") != id || got.str("@odata.context") == "" {
			t.Errorf("GET %s = %s", path, got.raw)
		}
	}

	sel := e.do(t, request{method: "GET", path: "/v1.0/applications/" + id + "?$select=appId,displayName", token: tok}).must(t, http.StatusOK)
	if len(sel.body) != 3 || sel.str("appId") != appID || !strings.HasSuffix(sel.str("@odata.context"), "#applications(appId,displayName)/$entity") {
		t.Errorf("$select = %s", sel.raw)
	}

	missing := uuid.NewString()
	nf := e.do(t, request{method: "GET", path: "/v1.0/applications/" + missing, token: tok}).must(t, http.StatusNotFound)
	if code, msg := nf.odataError(t); code != "Request_ResourceNotFound" || !strings.Contains(msg, missing) {
		t.Errorf("404 = %s", nf.raw)
	}
	bad := e.do(t, request{method: "GET", path: "/v1.0/applications/not-a-guid", token: tok}).must(t, http.StatusBadRequest)
	if code, _ := bad.odataError(t); code != "Request_BadRequest" {
		t.Errorf("bad id = %s", bad.raw)
	}
}

func TestCreateApplicationRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, tok := e.seededCaller(t, roleAll)
	tests := []struct {
		name     string
		body     string
		wantCode string
	}{
		{"NoDisplayName", `{"tags":[]}`, "Request_BadRequest"},
		{"UnknownProperty", `{"displayName":"x","colour":"blue"}`, "Request_BadRequest"},
		{"ReadOnly", `{"displayName":"x","appId":"00000000-0000-0000-0000-000000000001"}`, "Request_BadRequest"},
		{"Passwords", `{"displayName":"x","passwordCredentials":[{"displayName":"p"}]}`, "Request_BadRequest"},
		{"WrongType", `{"displayName":"x","tags":"appreg:managed"}`, "Request_BadRequest"},
		{"BadAudience", `{"displayName":"x","signInAudience":"Everyone"}`, "Request_BadRequest"},
		{"HTTPRedirect", `{"displayName":"x","web":{"redirectUris":["http://app.example.org/cb"]}}`, "Request_BadRequest"},
		{"FragmentRedirect", `{"displayName":"x","web":{"redirectUris":["https://app.example.org/cb#x"]}}`, "Request_BadRequest"},
		{"UnknownWebMember", `{"displayName":"x","web":{"redirectUrls":[]}}`, "Request_BadRequest"},
		{"NotJSON", `{"displayName":`, "BadRequest"},
		{"NotAnObject", `["displayName"]`, "BadRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: tt.body}).must(t, http.StatusBadRequest)
			if code, _ := r.odataError(t); code != tt.wantCode {
				t.Errorf("code = %s, want %s", code, tt.wantCode)
			}
		})
	}
	ok := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok,
		body: `{"displayName":"local","web":{"redirectUris":["http://localhost:8080/cb"]},"uniqueName":"u-1"}`}).must(t, http.StatusCreated)
	if ok.str("uniqueName") != "u-1" {
		t.Errorf("uniqueName = %q", ok.str("uniqueName"))
	}
	// Entra reports a taken uniqueName as a plain 400 that only its message names.
	dup := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"again","uniqueName":"U-1"}`}).must(t, http.StatusBadRequest)
	if code, msg := dup.odataError(t); code != "Request_BadRequest" || msg != uniqueNameTaken {
		t.Errorf("duplicate uniqueName: %s %q", code, msg)
	}
}

func TestUpsertByUniqueName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	spID, tok := e.seededCaller(t, roleOwnedBy)
	path := "/v1.0/applications(uniqueName='appreg-lab-results-sync')"
	prefer := map[string]string{"Prefer": "create-if-missing"}

	// Without Prefer a missing app is a 404, as documented.
	nf := e.do(t, request{method: "PATCH", path: path, token: tok, body: `{"displayName":"Lab"}`}).must(t, http.StatusNotFound)
	if code, _ := nf.odataError(t); code != "Request_ResourceNotFound" {
		t.Errorf("code %s", code)
	}

	created := e.do(t, request{method: "PATCH", path: path, token: tok, gzip: true, headers: prefer,
		body: `{"@odata.type":"#microsoft.graph.application","displayName":"Lab","signInAudience":"AzureADMyOrg","tags":["appreg:managed","appreg:client:lab-results-sync"]}`,
	}).must(t, http.StatusCreated)
	if created.str("uniqueName") != "appreg-lab-results-sync" || created.str("signInAudience") != "AzureADMyOrg" {
		t.Errorf("created = %s", created.raw)
	}
	api, _ := created.body["api"].(map[string]any)
	if api["requestedAccessTokenVersion"] != nil {
		t.Errorf("single-tenant app got requestedAccessTokenVersion %v", api["requestedAccessTokenVersion"])
	}

	updated := e.do(t, request{method: "PATCH", path: path, token: tok, gzip: true, headers: prefer,
		body: `{"displayName":"Lab (prod)","notes":"owner: integration team"}`}).must(t, http.StatusNoContent)
	if len(updated.raw) != 0 || updated.header.Get("Content-Type") != "" {
		t.Errorf("204 carried a body: %q %q", updated.raw, updated.header.Get("Content-Type"))
	}
	// Without Prefer an existing app is updated all the same.
	e.do(t, request{method: "PATCH", path: path, token: tok, body: `{"web":{"redirectUris":["https://lab.example.org/cb"]}}`}).must(t, http.StatusNoContent)

	got := e.do(t, request{method: "GET", path: path, token: tok}).must(t, http.StatusOK)
	web, _ := got.body["web"].(map[string]any)
	if got.str("displayName") != "Lab (prod)" || got.str("notes") != "owner: integration team" || len(web["redirectUris"].([]any)) != 1 {
		t.Errorf("after updates: %s", got.raw)
	}
	if tags, _ := got.body["tags"].([]any); len(tags) != 2 {
		t.Errorf("tags were lost: %v", got.body["tags"])
	}

	change := e.do(t, request{method: "PATCH", path: path, token: tok, body: `{"uniqueName":"other"}`}).must(t, http.StatusBadRequest)
	change.odataError(t)
	e.do(t, request{method: "PATCH", path: "/v1.0/applications(uniqueName='new-one')", token: tok, headers: prefer, body: `{"notes":"no name"}`}).must(t, http.StatusBadRequest)

	st := e.srv.State()
	var app *struct{ owners []string }
	for _, a := range st.Applications {
		if a.UniqueName == "appreg-lab-results-sync" {
			app = &struct{ owners []string }{a.Owners}
		}
	}
	if app == nil || !slices.Equal(app.owners, []string{spID}) {
		t.Errorf("the OwnedBy caller should own the app it created: %+v", st.Applications)
	}
	if n := e.srv.Stats().Operations["upsertApplication"]; n != 6 {
		t.Errorf("upsertApplication count = %d, want 6", n)
	}
}

func TestUpdateAndDeleteApplication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, tok := e.seededCaller(t, roleAll)
	app := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"a","info":{"supportUrl":"https://s"}}`}).must(t, http.StatusCreated)
	id := app.str("id")
	e.do(t, request{method: "PATCH", path: "/v1.0/applications/" + id, token: tok,
		body: `{"info":{"marketingUrl":"https://m"},"tags":["x"]}`}).must(t, http.StatusNoContent)
	got := e.do(t, request{method: "GET", path: "/v1.0/applications/" + id, token: tok}).must(t, http.StatusOK)
	info, _ := got.body["info"].(map[string]any)
	if info["supportUrl"] != "https://s" || info["marketingUrl"] != "https://m" {
		t.Errorf("complex property not merged: %v", info)
	}
	e.do(t, request{method: "PATCH", path: "/v1.0/applications/" + id, token: tok, body: `{"displayName":null}`}).must(t, http.StatusBadRequest)

	e.do(t, request{method: "POST", path: "/v1.0/servicePrincipals", token: tok, body: `{"appId":"` + app.str("appId") + `"}`}).must(t, http.StatusCreated)
	e.do(t, request{method: "DELETE", path: "/v1.0/applications/" + id, token: tok}).must(t, http.StatusNoContent)
	e.do(t, request{method: "GET", path: "/v1.0/applications/" + id, token: tok}).must(t, http.StatusNotFound)
	e.do(t, request{method: "GET", path: "/v1.0/servicePrincipals(appId='" + app.str("appId") + "')", token: tok}).must(t, http.StatusNotFound)
	e.do(t, request{method: "DELETE", path: "/v1.0/applications/" + id, token: tok}).must(t, http.StatusNotFound)
}

func TestListApplications(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, tok := e.seededCaller(t, roleAll) // the seeded "caller" app is in the list too
	for _, b := range []string{
		`{"displayName":"alpha one","tags":["appreg:managed","appreg:client:alpha"]}`,
		`{"displayName":"alpha two","tags":["appreg:managed"]}`,
		`{"displayName":"beta","tags":["other"]}`,
		`{"displayName":"it's","uniqueName":"quoted"}`,
		`{"displayName":"gamma"}`,
	} {
		e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: b}).must(t, http.StatusCreated)
	}
	names := func(r response) []string {
		var out []string
		for _, v := range r.body["value"].([]any) {
			out = append(out, v.(map[string]any)["displayName"].(string))
		}
		return out
	}
	list := func(query string, headers map[string]string) response {
		return e.do(t, request{method: "GET", path: "/v1.0/applications?" + query, token: tok, headers: headers})
	}
	eventual := map[string]string{"ConsistencyLevel": "eventual"}
	tests := []struct {
		name    string
		query   string
		headers map[string]string
		want    []string
	}{
		{"All", "", nil, []string{"caller", "alpha one", "alpha two", "beta", "it's", "gamma"}},
		{"DisplayNameEq", "$filter=" + url.QueryEscape("displayName eq 'beta'"), nil, []string{"beta"}},
		{"StartsWith", "$filter=" + url.QueryEscape("startswith(displayName,'ALPHA')"), nil, []string{"alpha one", "alpha two"}},
		{"TagAny", "$filter=" + url.QueryEscape("tags/any(t:t eq 'appreg:managed')"), nil, []string{"alpha one", "alpha two"}},
		{"And", "$filter=" + url.QueryEscape("tags/any(t:t eq 'appreg:managed') and displayName eq 'alpha two'"), nil, []string{"alpha two"}},
		{"OrParens", "$filter=" + url.QueryEscape("(displayName eq 'beta' or displayName eq 'gamma')"), nil, []string{"beta", "gamma"}},
		{"EscapedQuote", "$filter=" + url.QueryEscape("displayName eq 'it''s'"), nil, []string{"it's"}},
		{"UniqueName", "$filter=" + url.QueryEscape("uniqueName eq 'quoted'"), nil, []string{"it's"}},
		{"Ne", "$filter=" + url.QueryEscape("displayName ne 'beta' and startswith(displayName,'b')"), eventual, nil},
		{"EndsWith", "$filter=" + url.QueryEscape("endswith(displayName,'two')"), eventual, []string{"alpha two"}},
		{"EncodedDollar", "%24filter=" + url.QueryEscape("displayName eq 'gamma'"), nil, []string{"gamma"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := list(tt.query, tt.headers).must(t, http.StatusOK)
			if got := names(r); !slices.Equal(got, tt.want) {
				t.Errorf("names = %q, want %q", got, tt.want)
			}
			if r.str("@odata.context") != e.srv.URL()+"/v1.0/$metadata#applications" {
				t.Errorf("@odata.context = %q", r.str("@odata.context"))
			}
		})
	}

	// appId eq, the query the handler uses, with $select.
	all := list("", nil)
	first := all.body["value"].([]any)[1].(map[string]any)
	byAppID := list("$filter="+url.QueryEscape("appId eq '"+first["appId"].(string)+"'")+"&$select=id,appId", nil).must(t, http.StatusOK)
	v := byAppID.body["value"].([]any)
	if len(v) != 1 || len(v[0].(map[string]any)) != 2 || !strings.HasSuffix(byAppID.str("@odata.context"), "#applications(id,appId)") {
		t.Errorf("appId eq with $select = %s", byAppID.raw)
	}

	errs := []struct {
		name     string
		query    string
		headers  map[string]string
		wantCode string
	}{
		{"NeWithoutEventual", "$filter=" + url.QueryEscape("displayName ne 'beta'"), nil, "Request_UnsupportedQuery"},
		{"EndsWithoutEventual", "$filter=" + url.QueryEscape("endswith(displayName,'a')"), nil, "Request_UnsupportedQuery"},
		{"NotWithoutEventual", "$filter=" + url.QueryEscape("not(displayName eq 'a')"), nil, "Request_UnsupportedQuery"},
		{"UnfilterableProperty", "$filter=" + url.QueryEscape("notes eq 'x'"), nil, "Request_UnsupportedQuery"},
		{"Syntax", "$filter=" + url.QueryEscape("displayName eq"), nil, "BadRequest"},
		{"Unterminated", "$filter=" + url.QueryEscape("displayName eq 'x"), nil, "BadRequest"},
		{"TopTooBig", "$top=1000", nil, "Request_BadRequest"},
		{"TopZero", "$top=0", nil, "Request_BadRequest"},
		{"SelectUnknown", "$select=colour", nil, "BadRequest"},
		{"CountWithoutEventual", "$count=true", nil, "Request_UnsupportedQuery"},
		{"Skip", "$skip=2", nil, "Request_BadRequest"},
		{"BadSkipToken", "$skiptoken=zzz", nil, "Request_BadRequest"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			r := list(tt.query, tt.headers).must(t, http.StatusBadRequest)
			if code, _ := r.odataError(t); code != tt.wantCode {
				t.Errorf("code = %s, want %s (%s)", code, tt.wantCode, r.raw)
			}
		})
	}

	counted := list("$count=true&$filter="+url.QueryEscape("startswith(displayName,'alpha')"), eventual).must(t, http.StatusOK)
	if counted.body["@odata.count"] != 2.0 {
		t.Errorf("@odata.count = %v", counted.body["@odata.count"])
	}
}

func TestListPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, tok := e.seededCaller(t, roleAll)
	for i := range 7 {
		e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok,
			body: `{"displayName":"paged ` + string(rune('a'+i)) + `","tags":["page"]}`}).must(t, http.StatusCreated)
	}
	next := "/v1.0/applications?$filter=" + url.QueryEscape("tags/any(t:t eq 'page')") + "&$top=3&$select=displayName"
	var got []string
	pages := 0
	for next != "" {
		r := e.do(t, request{method: "GET", path: next, token: tok}).must(t, http.StatusOK)
		pages++
		for _, v := range r.body["value"].([]any) {
			got = append(got, v.(map[string]any)["displayName"].(string))
		}
		next = ""
		if link := r.str("@odata.nextLink"); link != "" {
			if !strings.HasPrefix(link, e.srv.URL()+"/v1.0/applications?") || !strings.Contains(link, "$top=3") || !strings.Contains(link, "$skiptoken=") {
				t.Fatalf("nextLink = %q, want absolute with the original query", link)
			}
			next = strings.TrimPrefix(link, e.srv.URL())
		}
	}
	want := []string{"paged a", "paged b", "paged c", "paged d", "paged e", "paged f", "paged g"}
	if pages != 3 || !slices.Equal(got, want) {
		t.Errorf("%d pages: %q", pages, got)
	}
}

func TestRoutingAndAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, tok := e.seededCaller(t, roleAll)
	vault, err := e.srv.Issuer().Sign(tokenClaims(e, "https://vault.azure.net"))
	if err != nil {
		t.Fatal(err)
	}
	expired := tokenClaims(e, "https://graph.microsoft.com")
	expired.ExpiresAt = e.clock.Now().Add(-1).Unix()
	expiredTok, _ := e.srv.Issuer().Sign(expired)

	tests := []struct {
		name       string
		method     string
		path       string
		token      string
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{"NoToken", "GET", "/v1.0/applications", "", 401, "InvalidAuthenticationToken", "Access token is empty."},
		{"WrongAudience", "GET", "/v1.0/applications", vault, 401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience."},
		{"Expired", "GET", "/v1.0/applications", expiredTok, 401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."},
		{"Garbage", "GET", "/v1.0/applications", "not.a.jwt", 401, "InvalidAuthenticationToken", "Access token validation failure."},
		{"UnknownSegment", "GET", "/v1.0/widgets", tok, 400, "BadRequest", "Resource not found for the segment 'widgets'."},
		{"WrongMethod", "PUT", "/v1.0/applications", tok, 405, "Request_BadRequest", ""},
		{"Beta", "GET", "/beta/applications", tok, 400, "BadRequest", ""},
		{"BadAlternateKey", "GET", "/v1.0/applications(displayName='x')", tok, 400, "Request_BadRequest", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, request{method: tt.method, path: tt.path, token: tt.token}).must(t, tt.wantStatus)
			code, msg := r.odataError(t)
			if code != tt.wantCode || (tt.wantMsg != "" && msg != tt.wantMsg) {
				t.Errorf("error = %s %q, want %s %q", code, msg, tt.wantCode, tt.wantMsg)
			}
			if tt.wantStatus == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("401 without a Bearer challenge: %v", r.header)
			}
		})
	}
	// Actions may be namespace-qualified, as OData allows.
	app := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"q"}`}).must(t, http.StatusCreated)
	e.do(t, request{method: "POST", path: "/v1.0/applications/" + app.str("id") + "/microsoft.graph.addPassword", token: tok}).must(t, http.StatusOK)
}

func TestRequestBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, tok := e.seededCaller(t, roleAll)
	tests := []struct {
		name       string
		body       string
		headers    map[string]string
		gzip       bool
		wantStatus int
		wantCode   string
	}{
		{"Plain", `{"displayName":"a"}`, nil, false, 201, ""},
		{"Gzip", `{"displayName":"a"}`, nil, true, 201, ""},
		{"GzipHeaderPlainBody", `{"displayName":"a"}`, map[string]string{"Content-Encoding": "gzip"}, false, 400, "BadRequest"},
		{"Deflate", `{"displayName":"a"}`, map[string]string{"Content-Encoding": "deflate"}, false, 415, "UnsupportedMediaType"},
		{"Empty", ``, nil, false, 400, "BadRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: tt.body, gzip: tt.gzip, headers: tt.headers}).must(t, tt.wantStatus)
			if tt.wantCode != "" {
				if code, _ := r.odataError(t); code != tt.wantCode {
					t.Errorf("code = %s, want %s", code, tt.wantCode)
				}
			}
		})
	}
}

func TestDefaultPageSize(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, tok := e.seededCaller(t, roleAll)
	for range 100 {
		e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"many"}`}).must(t, http.StatusCreated)
	}
	first := e.do(t, request{method: "GET", path: "/v1.0/applications", token: tok}).must(t, http.StatusOK)
	if n := len(first.body["value"].([]any)); n != 100 || first.str("@odata.nextLink") == "" {
		t.Fatalf("first page has %d items, nextLink %q; want 100 and a link", n, first.str("@odata.nextLink"))
	}
	second := e.do(t, request{method: "GET", path: strings.TrimPrefix(first.str("@odata.nextLink"), e.srv.URL()), token: tok}).must(t, http.StatusOK)
	if n := len(second.body["value"].([]any)); n != 1 || second.body["@odata.nextLink"] != nil {
		t.Errorf("second page has %d items, nextLink %v", n, second.body["@odata.nextLink"])
	}
	big := e.do(t, request{method: "GET", path: "/v1.0/applications?$top=999&$select=id", token: tok}).must(t, http.StatusOK)
	if n := len(big.body["value"].([]any)); n != 101 {
		t.Errorf("$top=999 returned %d", n)
	}
}
