package graphemu_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/google/uuid"
)

func TestServicePrincipals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	callerID, tok := e.seededCaller(t, roleOwnedBy)
	app := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"My App","signInAudience":"AzureADMyOrg"}`}).must(t, http.StatusCreated)
	appID := app.str("appId")

	sp := e.do(t, request{method: "POST", path: "/v1.0/servicePrincipals", token: tok, gzip: true,
		body: `{"@odata.type":"#microsoft.graph.servicePrincipal","appId":"` + appID + `"}`}).must(t, http.StatusCreated)
	if sp.str("appId") != appID || sp.str("displayName") != "My App" || sp.str("appDisplayName") != "My App" ||
		sp.str("appOwnerOrganizationId") != e.srv.TenantID() || sp.str("servicePrincipalType") != "Application" ||
		sp.str("signInAudience") != "AzureADMyOrg" || sp.body["accountEnabled"] != true ||
		sp.str("@odata.context") != e.srv.URL()+"/v1.0/$metadata#servicePrincipals/$entity" {
		t.Errorf("created SP = %s", sp.raw)
	}
	if names, _ := sp.body["servicePrincipalNames"].([]any); len(names) != 1 || names[0] != appID {
		t.Errorf("servicePrincipalNames = %v", sp.body["servicePrincipalNames"])
	}
	spID := sp.str("id")

	dup := e.do(t, request{method: "POST", path: "/v1.0/servicePrincipals", token: tok, body: `{"appId":"` + appID + `"}`}).must(t, http.StatusConflict)
	if code, _ := dup.odataError(t); code != "Request_MultipleObjectsWithSameKeyValue" {
		t.Errorf("duplicate: %s", code)
	}

	unknown := uuid.NewString()
	nb := e.do(t, request{method: "POST", path: "/v1.0/servicePrincipals", token: tok, body: `{"appId":"` + unknown + `"}`}).must(t, http.StatusBadRequest)
	checkNoBackingApp(t, nb, unknown)
	e.do(t, request{method: "POST", path: "/v1.0/servicePrincipals", token: tok, body: `{}`}).must(t, http.StatusBadRequest)

	for _, path := range []string{"/v1.0/servicePrincipals/" + spID, "/v1.0/servicePrincipals(appId='" + appID + "')"} {
		if got := e.do(t, request{method: "GET", path: path, token: tok}).must(t, http.StatusOK); got.str("id") != spID {
			t.Errorf("GET %s = %s", path, got.raw)
		}
	}
	list := e.do(t, request{method: "GET", path: "/v1.0/servicePrincipals?$filter=" + url.QueryEscape("appId eq '"+appID+"'"), token: tok}).must(t, http.StatusOK)
	if v := list.body["value"].([]any); len(v) != 1 {
		t.Errorf("list by appId = %s", list.raw)
	}

	e.do(t, request{method: "PATCH", path: "/v1.0/servicePrincipals/" + spID, token: tok, body: `{"tags":["HideApp"],"notes":"n"}`}).must(t, http.StatusNoContent)
	e.do(t, request{method: "PATCH", path: "/v1.0/servicePrincipals/" + spID, token: tok, body: `{"appId":"` + unknown + `"}`}).must(t, http.StatusBadRequest)

	owners := e.do(t, request{method: "GET", path: "/v1.0/servicePrincipals/" + spID + "/owners", token: tok}).must(t, http.StatusOK)
	if v := owners.body["value"].([]any); len(v) != 1 || v[0].(map[string]any)["id"] != callerID {
		t.Errorf("SP owners = %s", owners.raw)
	}

	e.do(t, request{method: "DELETE", path: "/v1.0/servicePrincipals/" + spID, token: tok}).must(t, http.StatusNoContent)
	e.do(t, request{method: "GET", path: "/v1.0/servicePrincipals/" + spID, token: tok}).must(t, http.StatusNotFound).odataError(t)
}

func checkNoBackingApp(tb testing.TB, r response, appID string) {
	tb.Helper()
	code, msg := r.odataError(tb)
	if code != "Request_BadRequest" || msg != "The appId '"+appID+"' of the service principal does not reference a valid application object." {
		tb.Errorf("error = %s %q", code, msg)
	}
	details, _ := r.body["error"].(map[string]any)["details"].([]any)
	if len(details) != 1 || details[0].(map[string]any)["code"] != "NoBackingApplicationObject" || details[0].(map[string]any)["target"] != "appId" {
		tb.Errorf("details = %v", details)
	}
}

func TestUpsertServicePrincipal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, tok := e.seededCaller(t, roleOwnedBy)
	appID := e.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"My App"}`}).must(t, http.StatusCreated).str("appId")
	path := "/v1.0/servicePrincipals(appId='" + appID + "')"
	prefer := map[string]string{"Prefer": "create-if-missing"}

	e.do(t, request{method: "PATCH", path: path, token: tok, body: `{"displayName":"x"}`}).must(t, http.StatusNotFound).odataError(t)
	created := e.do(t, request{method: "PATCH", path: path, token: tok, gzip: true, headers: prefer, body: `{"displayName":"My app instance"}`}).must(t, http.StatusCreated)
	if created.str("displayName") != "My app instance" || created.str("appDisplayName") != "My App" || created.str("appId") != appID {
		t.Errorf("created = %s", created.raw)
	}
	e.do(t, request{method: "PATCH", path: path, token: tok, headers: prefer, body: `{}`}).must(t, http.StatusNoContent)

	missing := uuid.NewString()
	r := e.do(t, request{method: "PATCH", path: "/v1.0/servicePrincipals(appId='" + missing + "')", token: tok, headers: prefer, body: `{}`}).must(t, http.StatusBadRequest)
	checkNoBackingApp(t, r, missing)
	if got := e.srv.Stats().Operations["upsertServicePrincipal"]; got != 4 {
		t.Errorf("upsertServicePrincipal count = %d", got)
	}
}

// TestOwnership checks Application.ReadWrite.OwnedBy: such a caller creates apps it then owns,
// reads every app (Graph lists the whole tenant to it), and writes only what it owns.
func TestOwnership(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	aliceID, alice := e.seededCaller(t, roleOwnedBy)
	_, bob := e.seededCaller(t, roleOwnedBy)
	_, admin := e.seededCaller(t, roleAll)
	_, reader := e.seededCaller(t, roleRead)
	nobody := e.caller(t, uuid.NewString())

	mine := e.do(t, request{method: "POST", path: "/v1.0/applications", token: alice, body: `{"displayName":"alice's"}`}).must(t, http.StatusCreated)
	theirs := e.do(t, request{method: "POST", path: "/v1.0/applications", token: admin, body: `{"displayName":"admin's"}`}).must(t, http.StatusCreated)
	if st := e.srv.State(); !slices.Equal(st.Applications[4].Owners, []string{aliceID}) || len(st.Applications[5].Owners) != 0 {
		t.Errorf("owners: OwnedBy caller must own its app, an All caller is not added: %+v", st.Applications[4:])
	}
	mineID, theirsID := mine.str("id"), theirs.str("id")
	app := func(id string) string { return "/v1.0/applications/" + id }
	keyID := e.do(t, request{method: "POST", path: app(mineID) + "/addPassword", token: alice}).must(t, http.StatusOK).str("keyId")

	tests := []struct {
		name   string
		token  string
		method string
		path   string
		body   string
		want   int
	}{
		{"OwnerReads", alice, "GET", app(mineID), "", 200},
		{"OwnedByReadsOthers", alice, "GET", app(theirsID), "", 200},
		{"OwnedByListsAll", bob, "GET", "/v1.0/applications", "", 200},
		{"OwnerUpdates", alice, "PATCH", app(mineID), `{"notes":"x"}`, 204},
		{"OtherOwnedByCannotUpdate", bob, "PATCH", app(mineID), `{"notes":"x"}`, 403},
		{"OwnedByCannotUpdateUnowned", alice, "PATCH", app(theirsID), `{"notes":"x"}`, 403},
		{"OtherCannotAddPassword", bob, "POST", app(mineID) + "/addPassword", "", 403},
		{"OtherCannotRemovePassword", bob, "POST", app(mineID) + "/removePassword", `{"keyId":"` + keyID + `"}`, 403},
		{"OtherCannotCreateSP", bob, "POST", "/v1.0/servicePrincipals", `{"appId":"` + mine.str("appId") + `"}`, 403},
		{"OtherCannotDelete", bob, "DELETE", app(mineID), "", 403},
		{"OwnedByCannotAddOwner", alice, "POST", app(mineID) + "/owners/$ref", `{"@odata.id":"https://graph.microsoft.com/v1.0/directoryObjects/` + aliceID + `"}`, 403},
		{"ReaderReads", reader, "GET", app(mineID), "", 200},
		{"ReaderCannotCreate", reader, "POST", "/v1.0/applications", `{"displayName":"r"}`, 403},
		{"ReaderCannotWrite", reader, "PATCH", app(mineID), `{"notes":"x"}`, 403},
		{"NoRolesCannotRead", nobody, "GET", app(mineID), "", 403},
		{"NoRolesCannotList", nobody, "GET", "/v1.0/applications", "", 403},
		{"NoRolesCannotCreate", nobody, "POST", "/v1.0/applications", `{"displayName":"n"}`, 403},
		{"NoRolesCannotUpsert", nobody, "PATCH", "/v1.0/applications(uniqueName='n')", `{"displayName":"n"}`, 403},
		{"AdminWritesAny", admin, "PATCH", app(mineID), `{"notes":"y"}`, 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, request{method: tt.method, path: tt.path, token: tt.token, body: tt.body}).must(t, tt.want)
			if tt.want == 403 {
				if code, msg := r.odataError(t); code != "Authorization_RequestDenied" || msg != "Insufficient privileges to complete the operation." {
					t.Errorf("403 = %s %q", code, msg)
				}
			}
		})
	}

	// Owners: adding needs Application.ReadWrite.All; an owner may remove owners.
	bobApp := e.do(t, request{method: "POST", path: "/v1.0/applications", token: bob, body: `{"displayName":"bob's"}`}).must(t, http.StatusCreated).str("id")
	bobID := e.srv.State().Applications[6].Owners[0]
	ref := `{"@odata.id":"https://graph.microsoft.com/v1.0/directoryObjects/` + aliceID + `"}`
	e.do(t, request{method: "POST", path: app(bobApp) + "/owners/$ref", token: admin, body: ref}).must(t, http.StatusNoContent)
	dup := e.do(t, request{method: "POST", path: app(bobApp) + "/owners/$ref", token: admin, body: ref}).must(t, http.StatusBadRequest)
	dup.odataError(t)
	e.do(t, request{method: "POST", path: app(bobApp) + "/owners/$ref", token: admin,
		body: `{"@odata.id":"https://graph.microsoft.com/v1.0/directoryObjects/` + uuid.NewString() + `"}`}).must(t, http.StatusNotFound)
	owners := e.do(t, request{method: "GET", path: app(bobApp) + "/owners", token: alice}).must(t, http.StatusOK)
	var ids []string
	for _, v := range owners.body["value"].([]any) {
		m := v.(map[string]any)
		if m["@odata.type"] != "#microsoft.graph.servicePrincipal" {
			t.Errorf("owner @odata.type = %v", m["@odata.type"])
		}
		ids = append(ids, m["id"].(string))
	}
	if !slices.Equal(ids, []string{bobID, aliceID}) {
		t.Errorf("owners = %q", ids)
	}
	// Now alice co-owns bob's app and may write it.
	e.do(t, request{method: "POST", path: app(bobApp) + "/addPassword", token: alice}).must(t, http.StatusOK)
	e.do(t, request{method: "DELETE", path: app(bobApp) + "/owners/" + bobID + "/$ref", token: alice}).must(t, http.StatusNoContent)
	e.do(t, request{method: "DELETE", path: app(bobApp) + "/owners/" + bobID + "/$ref", token: alice}).must(t, http.StatusNotFound)
	e.do(t, request{method: "PATCH", path: app(bobApp), token: bob, body: `{"notes":"x"}`}).must(t, http.StatusForbidden)

	obj := e.do(t, request{method: "GET", path: "/v1.0/directoryObjects/" + aliceID, token: bob}).must(t, http.StatusOK)
	if obj.str("@odata.type") != "#microsoft.graph.servicePrincipal" || obj.str("id") != aliceID {
		t.Errorf("directoryObject = %s", obj.raw)
	}
}

func TestDeletedOwnerIsUnlinked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, admin := e.seededCaller(t, roleAll)
	_, alice := e.seededCaller(t, roleOwnedBy)
	appID := e.do(t, request{method: "POST", path: "/v1.0/applications", token: alice, body: `{"displayName":"a"}`}).must(t, http.StatusCreated).str("id")
	aliceSP := e.srv.State().Applications[2].Owners[0]
	e.do(t, request{method: "DELETE", path: "/v1.0/servicePrincipals/" + aliceSP, token: admin}).must(t, http.StatusNoContent)
	owners := e.do(t, request{method: "GET", path: "/v1.0/applications/" + appID + "/owners", token: admin}).must(t, http.StatusOK)
	if v := owners.body["value"].([]any); len(v) != 0 {
		t.Errorf("owners after deleting the owner = %s", owners.raw)
	}
}
