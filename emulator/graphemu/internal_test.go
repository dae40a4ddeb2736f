package graphemu

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"appreg/emulator/internal/token"
)

func TestParseFilter(t *testing.T) {
	objs := map[string]map[string]json.RawMessage{
		"a": {"displayName": jsonString("Alpha One"), "appId": jsonString("AAA"), "tags": json.RawMessage(`["appreg:managed","x"]`), "uniqueName": jsonString("appreg-a")},
		"b": {"displayName": jsonString("alpha two"), "appId": jsonString("bbb"), "tags": json.RawMessage(`[]`), "uniqueName": json.RawMessage(`null`)},
		"c": {"displayName": jsonString("O'Brien"), "appId": jsonString("ccc"), "tags": json.RawMessage(`["appreg:managed"]`)},
	}
	tests := []struct {
		name     string
		filter   string
		eventual bool
		want     []string
		wantCode string
	}{
		{"Eq", "appId eq 'bbb'", false, []string{"b"}, ""},
		{"EqIgnoresCase", "appId eq 'aaa'", false, []string{"a"}, ""},
		{"KeywordsAnyCase", "AppId EQ 'bbb' OR appId Eq 'ccc'", false, []string{"b", "c"}, ""},
		{"StartsWith", "startswith(displayName,'alpha')", false, []string{"a", "b"}, ""},
		{"StartsWithSpaces", "startswith( displayName , 'alpha t' )", false, []string{"b"}, ""},
		{"AnyTag", "tags/any(t:t eq 'appreg:managed')", false, []string{"a", "c"}, ""},
		{"AnyStartsWith", "tags/any(x:startswith(x,'appreg:'))", false, []string{"a", "c"}, ""},
		{"AndOrPrecedence", "appId eq 'aaa' or appId eq 'bbb' and tags/any(t:t eq 'x')", false, []string{"a"}, ""},
		{"Parens", "(appId eq 'aaa' or appId eq 'bbb') and startswith(displayName,'alpha t')", false, []string{"b"}, ""},
		{"In", "appId in ('aaa','ccc')", false, []string{"a", "c"}, ""},
		{"Quote", "displayName eq 'O''Brien'", false, []string{"c"}, ""},
		{"Null", "uniqueName eq null", false, []string{"b", "c"}, ""},
		{"NeEventual", "appId ne 'aaa'", true, []string{"b", "c"}, ""},
		{"NotEventual", "not(tags/any(t:t eq 'x'))", true, []string{"b", "c"}, ""},
		{"EndsWithEventual", "endswith(displayName,'ONE')", true, []string{"a"}, ""},
		{"Ne", "appId ne 'aaa'", false, nil, "Request_UnsupportedQuery"},
		{"Not", "not(appId eq 'aaa')", false, nil, "Request_UnsupportedQuery"},
		{"EndsWith", "endswith(displayName,'x')", false, nil, "Request_UnsupportedQuery"},
		{"UnknownProperty", "colour eq 'red'", false, nil, "Request_UnsupportedQuery"},
		{"NotFilterable", "notes eq 'x'", false, nil, "Request_UnsupportedQuery"},
		{"StartsWithOnGUID", "startswith(appId,'a')", false, nil, "Request_UnsupportedQuery"},
		{"AnyOnScalar", "displayName/any(t:t eq 'x')", false, nil, "Request_UnsupportedQuery"},
		{"Gt", "displayName gt 'a'", false, nil, "Request_UnsupportedQuery"},
		{"MissingValue", "appId eq", false, nil, "BadRequest"},
		{"Unterminated", "appId eq 'aaa", false, nil, "BadRequest"},
		{"Trailing", "appId eq 'aaa' 'bbb'", false, nil, "BadRequest"},
		{"UnbalancedParen", "(appId eq 'aaa'", false, nil, "BadRequest"},
		{"WrongRangeVariable", "tags/any(t:s eq 'x')", false, nil, "BadRequest"},
		{"Symbol", "appId == 'aaa'", false, nil, "BadRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pred, hint, rep := parseFilter(tt.filter, appSchema, tt.eventual)
			if tt.wantCode != "" {
				if rep == nil || rep.err.Code != tt.wantCode || rep.status != http.StatusBadRequest {
					t.Fatalf("parseFilter(%q) = %+v, want 400 %s", tt.filter, rep, tt.wantCode)
				}
				return
			}
			if rep != nil {
				t.Fatalf("parseFilter(%q): %s %s", tt.filter, rep.err.Code, rep.err.Message)
			}
			var got []string
			for _, k := range []string{"a", "b", "c"} {
				if pred(objs[k]) {
					got = append(got, k)
					// The index may narrow a list to the hint's candidates only if every match
					// satisfies it.
					if hint != nil && !slices.ContainsFunc(append(strs(objs[k], hint.prop), str(objs[k], hint.prop)), func(v string) bool { return strings.EqualFold(v, hint.value) }) {
						t.Errorf("match %s does not satisfy the index hint %+v", k, *hint)
					}
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	tests := []struct {
		seg, prop, value string
		ok               bool
	}{
		{"3f1c", "", "3f1c", true},
		{"('3f1c')", "", "3f1c", true},
		{"(appId='abc')", "appId", "abc", true},
		{"(uniqueName='it''s/x')", "uniqueName", "it's/x", true},
		{"(uniqueName = 'spaced')", "uniqueName", "spaced", true},
		{"(appId=abc)", "", "", false},
		{"(appId='abc'", "", "", false},
		{"(appId='a'b')", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		prop, value, ok := parseKey(tt.seg)
		if prop != tt.prop || value != tt.value || ok != tt.ok {
			t.Errorf("parseKey(%q) = %q %q %v, want %q %q %v", tt.seg, prop, value, ok, tt.prop, tt.value, tt.ok)
		}
	}
}

func TestSplitPath(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"/v1.0/applications", []string{"v1.0", "applications"}},
		{"/v1.0/applications(uniqueName='a%2Fb')/", []string{"v1.0", "applications", "(uniqueName='a/b')"}},
		{"/v1.0/applications(appId=%27x%27)/microsoft.graph.addPassword", []string{"v1.0", "applications", "(appId='x')", "addPassword"}},
		{"/v1.0/applications/abc/owners/$ref", []string{"v1.0", "applications", "abc", "owners", "$ref"}},
	}
	for _, tt := range tests {
		got, ok := splitPath(tt.in)
		if !ok || !slices.Equal(got, tt.want) {
			t.Errorf("splitPath(%q) = %q %v, want %q", tt.in, got, ok, tt.want)
		}
	}
	if _, ok := splitPath("/beta/applications"); ok {
		t.Error("beta accepted")
	}
}

func TestMergeObject(t *testing.T) {
	base := json.RawMessage(`{"homePageUrl":null,"redirectUris":["https://a"],"implicitGrantSettings":{"enableAccessTokenIssuance":false,"enableIdTokenIssuance":false}}`)
	tests := []struct {
		name    string
		patch   string
		want    string
		wantBad string
	}{
		{"ReplaceCollection", `{"redirectUris":["https://b","https://c"]}`, `{"homePageUrl":null,"redirectUris":["https://b","https://c"],"implicitGrantSettings":{"enableAccessTokenIssuance":false,"enableIdTokenIssuance":false}}`, ""},
		{"MergeNested", `{"implicitGrantSettings":{"enableIdTokenIssuance":true}}`, `{"homePageUrl":null,"redirectUris":["https://a"],"implicitGrantSettings":{"enableAccessTokenIssuance":false,"enableIdTokenIssuance":true}}`, ""},
		{"IgnoreODataType", `{"@odata.type":"#microsoft.graph.webApplication","homePageUrl":"https://h"}`, `{"homePageUrl":"https://h","redirectUris":["https://a"],"implicitGrantSettings":{"enableAccessTokenIssuance":false,"enableIdTokenIssuance":false}}`, ""},
		{"Unknown", `{"redirectUrls":[]}`, "", "web.redirectUrls"},
		{"UnknownNested", `{"implicitGrantSettings":{"x":1}}`, "", "web.implicitGrantSettings.x"},
		{"Null", `null`, `null`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, bad := mergeObject(base, json.RawMessage(tt.patch), "web")
			if bad != tt.wantBad || (tt.wantBad == "" && string(got) != tt.want) {
				t.Errorf("mergeObject = %s, %q; want %s, %q", got, bad, tt.want, tt.wantBad)
			}
		})
	}
	// A property with no stored shape (null default) takes the patch as given.
	if got, bad := mergeObject(json.RawMessage(`null`), json.RawMessage(`{"idToken":[]}`), "optionalClaims"); bad != "" || string(got) != `{"idToken":[]}` {
		t.Errorf("shapeless merge = %s %q", got, bad)
	}
}

func TestPerms(t *testing.T) {
	owned := &object{owners: []string{"me"}}
	other := &object{}
	tests := []struct {
		name                                  string
		roles                                 []string
		read, create, writeOwned, writeOthers bool
	}{
		{"OwnedBy", []string{"Application.ReadWrite.OwnedBy"}, true, true, true, false},
		{"All", []string{"Application.ReadWrite.All"}, true, true, true, true},
		{"Both", []string{"Application.ReadWrite.OwnedBy", "Application.ReadWrite.All"}, true, true, true, true},
		{"ReadAll", []string{"Application.Read.All"}, true, false, false, false},
		{"DirectoryReadWrite", []string{"Directory.ReadWrite.All"}, true, false, false, false},
		{"None", nil, false, false, false, false},
		{"OtherAPI", []string{"User.Read.All"}, false, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := (&call{claims: token.Claims{ObjectID: "me", Roles: tt.roles}}).perms()
			if p.read != tt.read || p.canCreate() != tt.create || p.canWrite(owned) != tt.writeOwned || p.canWrite(other) != tt.writeOthers {
				t.Errorf("perms = read %v create %v owned %v others %v", p.read, p.canCreate(), p.canWrite(owned), p.canWrite(other))
			}
			if got := p.ownersForNew(); p.writeAll == (got != nil) {
				t.Errorf("ownersForNew = %v with writeAll %v", got, p.writeAll)
			}
		})
	}
}

func TestFilterHint(t *testing.T) {
	tests := []struct {
		filter, prop, value string // prop "": no hint, scan
	}{
		{"appId eq 'AAA'", "appId", "AAA"},
		{"tags/any(t:t eq 'appreg:managed')", "tags", "appreg:managed"},
		{"startswith(displayName,'x') and uniqueName eq 'u'", "uniqueName", "u"},
		{"appId eq 'a' or appId eq 'b'", "", ""},
		{"tags/any(t:t eq 'x') and not(appId eq 'a')", "", ""},
		{"appId ne 'a'", "", ""},
		{"startswith(displayName,'x')", "", ""},
		{"uniqueName eq null", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			_, hint, rep := parseFilter(tt.filter, appSchema, true)
			if rep != nil {
				t.Fatal(rep.err.Message)
			}
			switch {
			case tt.prop == "" && hint != nil:
				t.Errorf("hint %+v, want none", *hint)
			case tt.prop != "" && (hint == nil || hint.prop != tt.prop || hint.value != tt.value):
				t.Errorf("hint %+v, want %s = %s", hint, tt.prop, tt.value)
			}
		})
	}
}

func TestReplicas(t *testing.T) {
	// Two replicators with one seed draw the same lags and replicas: a run can be repeated.
	cfg := Replication{Replicas: 3, MinLag: time.Hour, MaxLag: 2 * time.Hour}
	a, b := newReplicator(cfg, 42), newReplicator(cfg, 42)
	for range 20 {
		wa, wb := a.write(), b.write()
		for i := range wa {
			if d := wa[i].Sub(wb[i]); d > time.Second || d < -time.Second || wa[i].Before(time.Now().Add(59*time.Minute)) {
				t.Fatalf("seeded lags differ or are out of bounds: %v vs %v", wa, wb)
			}
		}
		if a.pick() != b.pick() {
			t.Fatal("seeded replica choices differ")
		}
	}
	if newReplicator(Replication{Replicas: 1}, 1).write() != nil {
		t.Error("no lag configured but a write lags")
	}

	// An object created, deleted and restored, as replica 0 (lagging an hour) and the writable
	// replica see it.
	o := &object{born: a.write()}
	if o.liveOn(0) || !o.liveOn(primary) {
		t.Error("a new object is visible on a lagging replica, or not on the writable one")
	}
	o.born = nil
	o.deleted, o.flipped = true, a.write()
	if !o.liveOn(0) || o.binnedOn(0) || !o.binnedOn(primary) {
		t.Error("a lagging replica does not still serve a just-deleted object")
	}
	o.props, o.prev, o.changed = map[string]json.RawMessage{"v": jsonString("new")}, map[string]json.RawMessage{"v": jsonString("old")}, a.write()
	if str(o.propsOn(0), "v") != "old" || str(o.propsOn(primary), "v") != "new" {
		t.Error("a lagging replica does not serve the version before the change")
	}
	p := &password{born: nil, removed: true, unborn: a.write()}
	if !p.visibleOn(0) || p.visibleOn(primary) {
		t.Error("a removed password vanished from a lagging replica, or stayed on the writable one")
	}

	for _, bad := range []Replication{{MinLag: -1}, {MinLag: 2, MaxLag: 1}, {Replicas: 17, MaxLag: 1}} {
		if _, err := bad.normalized(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestISODuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"P90D": 90 * 24 * time.Hour, "P1Y": 365 * 24 * time.Hour, "PT12H": 12 * time.Hour,
		"P1DT2H30M": 26*time.Hour + 30*time.Minute, "PT90S": 90 * time.Second, "P2W": 14 * 24 * time.Hour,
	} {
		if got, err := parseISODuration(in); err != nil || got != want {
			t.Errorf("%s = %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "P", "PT", "90D", "P-1D", "P1H"} {
		if _, err := parseISODuration(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestNewSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		s := newSecret()
		if len(s) != 40 || s[3:6] != "8Q~" || seen[s] {
			t.Fatalf("secret of %d chars, marker %q, repeated %v", len(s), s[3:6], seen[s])
		}
		for _, c := range s {
			if !containsRune(secretAlphabet, c) {
				t.Fatalf("secret has %q outside Entra's alphabet", c)
			}
		}
		seen[s] = true
	}
}

func containsRune(s string, r rune) bool {
	for _, c := range s {
		if c == r {
			return true
		}
	}
	return false
}
