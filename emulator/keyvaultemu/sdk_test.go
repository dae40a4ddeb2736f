package keyvaultemu_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"appreg/emulator/keyvaultemu"
)

func set(tb testing.TB, c *azsecrets.Client, name, value string) azsecrets.SetSecretResponse {
	tb.Helper()
	resp, err := c.SetSecret(context.Background(), name, azsecrets.SetSecretParameters{Value: &value}, nil)
	if err != nil {
		tb.Fatalf("SetSecret(%s): %v", name, err)
	}
	return resp
}

func TestSDKCRUD(t *testing.T) {
	srv, clk := newServer(t, nil)
	c := newClient(t, srv, newCredential(srv, clk))
	ctx := context.Background()

	// nbf a day ahead: informational only, the value must still come back.
	nbf := epoch.Add(24 * time.Hour)
	first, err := c.SetSecret(ctx, "lab-results-sync-client-secret", azsecrets.SetSecretParameters{
		Value:            to.Ptr("first value"),
		ContentType:      to.Ptr("text/plain"),
		Tags:             map[string]*string{"managed-by": to.Ptr("appreg")},
		SecretAttributes: &azsecrets.SecretAttributes{NotBefore: &nbf},
	}, nil)
	if err != nil {
		t.Fatalf("SetSecret: %v", err)
	}
	v1 := first.ID.Version()
	if first.ID.Name() != "lab-results-sync-client-secret" || len(v1) != 32 {
		t.Fatalf("id = %s, want name and a 32-hex version", *first.ID)
	}
	a := first.Attributes
	if *first.Value != "first value" || !*a.Enabled || !a.NotBefore.Equal(nbf) || !a.Created.Equal(epoch) ||
		!a.Updated.Equal(epoch) || *a.RecoveryLevel != "Recoverable+Purgeable" || *a.RecoverableDays != 90 {
		t.Errorf("set bundle = %+v / %+v", first.Secret, *a)
	}

	clk.Advance(time.Minute)
	second := set(t, c, "lab-results-sync-client-secret", "second value")
	v2 := second.ID.Version()
	if v2 == v1 {
		t.Fatal("a set must make a new version")
	}
	if second.Tags != nil || second.ContentType != nil {
		t.Errorf("a new version starts with no tags or content type, got %v %v", second.Tags, second.ContentType)
	}

	latest, err := c.GetSecret(ctx, "lab-results-sync-client-secret", "", nil)
	if err != nil {
		t.Fatalf("GetSecret latest: %v", err)
	}
	if *latest.Value != "second value" || latest.ID.Version() != v2 {
		// Name the version, never the value: test output must not carry secret values.
		t.Errorf("latest = %s (value matches: %v), want version %s", *latest.ID, *latest.Value == "second value", v2)
	}
	old, err := c.GetSecret(ctx, "lab-results-sync-client-secret", v1, nil)
	if err != nil {
		t.Fatalf("GetSecret %s: %v", v1, err)
	}
	if *old.Value != "first value" || *old.Tags["managed-by"] != "appreg" || *old.ContentType != "text/plain" {
		t.Errorf("old version = %+v", old.Secret)
	}

	clk.Advance(time.Minute)
	exp := epoch.Add(90 * 24 * time.Hour)
	upd, err := c.UpdateSecretProperties(ctx, "lab-results-sync-client-secret", v1, azsecrets.UpdateSecretPropertiesParameters{
		SecretAttributes: &azsecrets.SecretAttributes{Expires: &exp},
		Tags:             map[string]*string{"keyId": to.Ptr("k1")},
	}, nil)
	if err != nil {
		t.Fatalf("UpdateSecretProperties: %v", err)
	}
	if upd.Value != nil {
		t.Error("an update must not return the value")
	}
	if !upd.Attributes.Expires.Equal(exp) || !upd.Attributes.NotBefore.Equal(nbf) || !upd.Attributes.Updated.Equal(epoch.Add(2*time.Minute)) ||
		len(upd.Tags) != 1 || *upd.Tags["keyId"] != "k1" || *upd.ContentType != "text/plain" {
		t.Errorf("updated = %+v attrs %+v", upd.Secret, *upd.Attributes)
	}

	// An empty version updates the latest.
	updLatest, err := c.UpdateSecretProperties(ctx, "lab-results-sync-client-secret", "", azsecrets.UpdateSecretPropertiesParameters{ContentType: to.Ptr("text/plain")}, nil)
	if err != nil {
		t.Fatalf("UpdateSecretProperties latest: %v", err)
	}
	if updLatest.ID.Version() != v2 || *updLatest.ContentType != "text/plain" {
		t.Errorf("update latest touched %s", *updLatest.ID)
	}

	// Names are case-insensitive and keep their first spelling.
	upper, err := c.GetSecret(ctx, "LAB-RESULTS-SYNC-CLIENT-SECRET", "", nil)
	if err != nil || upper.ID.Name() != "lab-results-sync-client-secret" {
		t.Errorf("case-insensitive get = %v, %v", upper.ID, err)
	}

	for _, tt := range []struct{ name, version string }{{"missing", ""}, {"lab-results-sync-client-secret", strings.Repeat("0", 32)}} {
		_, err := c.GetSecret(ctx, tt.name, tt.version, nil)
		if status, code, _, _ := serviceError(t, err); status != http.StatusNotFound || code != "SecretNotFound" {
			t.Errorf("get %s/%s = %d %s, want 404 SecretNotFound", tt.name, tt.version, status, code)
		}
	}
}

func TestSDKVersionsPaging(t *testing.T) {
	srv, clk := newServer(t, nil)
	c := newClient(t, srv, newCredential(srv, clk))
	var made []string
	for i := range 30 {
		clk.Advance(time.Second)
		made = append(made, set(t, c, "rotated", fmt.Sprint("value ", i)).ID.Version())
	}
	var got []string
	pages := 0
	pager := c.NewListSecretPropertiesVersionsPager("rotated", nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatalf("NextPage: %v", err)
		}
		pages++
		if pages == 1 && len(page.Value) != 25 {
			t.Errorf("first page has %d items, want 25", len(page.Value))
		}
		for _, p := range page.Value {
			if p.ID.Name() != "rotated" {
				t.Errorf("item id %s", *p.ID)
			}
			got = append(got, p.ID.Version())
		}
	}
	if pages != 2 {
		t.Errorf("pages = %d, want 2", pages)
	}
	// The service orders versions by id, not by creation.
	want := slices.Sorted(slices.Values(made))
	if !slices.Equal(got, want) {
		t.Errorf("versions = %v\nwant %v", got, want)
	}
}

func TestSDKListPaging(t *testing.T) {
	srv, clk := newServer(t, nil)
	c := newClient(t, srv, newCredential(srv, clk))
	var want []string
	for i := range 60 {
		name := fmt.Sprintf("client-%02d-client-secret", i)
		set(t, c, name, "v")
		set(t, c, name, "v") // a second version must not add a second item
		want = append(want, name)
	}
	var got, sizes []string
	pager := c.NewListSecretPropertiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatalf("NextPage: %v", err)
		}
		sizes = append(sizes, fmt.Sprint(len(page.Value)))
		for _, p := range page.Value {
			if p.ID.Version() != "" {
				t.Errorf("list item id %s carries a version", *p.ID)
			}
			got = append(got, p.ID.Name())
		}
	}
	if strings.Join(sizes, ",") != "25,25,10" {
		t.Errorf("page sizes = %s, want 25,25,10", strings.Join(sizes, ","))
	}
	if !slices.Equal(got, want) {
		t.Errorf("names = %v", got)
	}
}

func TestSDKSoftDelete(t *testing.T) {
	srv, clk := newServer(t, nil)
	c := newClient(t, srv, newCredential(srv, clk))
	ctx := context.Background()
	made := set(t, c, "gone", "keep me")

	del, err := c.DeleteSecret(ctx, "gone", nil)
	if err != nil {
		t.Fatalf("DeleteSecret: %v", err)
	}
	if del.Value != nil || *del.ID != *made.ID || *del.RecoveryID != strings.TrimSuffix(srv.URL(), "/")+"/deletedsecrets/gone" ||
		!del.DeletedDate.Equal(epoch) || !del.ScheduledPurgeDate.Equal(epoch.Add(90*24*time.Hour)) {
		t.Errorf("deleted bundle = %+v", del.DeletedSecret)
	}

	expect := func(step string, err error, status int, code, inner string) {
		t.Helper()
		gotStatus, gotCode, gotInner, _ := serviceError(t, err)
		if gotStatus != status || gotCode != code || gotInner != inner {
			t.Errorf("%s = %d %s/%s, want %d %s/%s", step, gotStatus, gotCode, gotInner, status, code, inner)
		}
	}

	// The delete is still settling: not yet listed as deleted, and the name is busy.
	_, err = c.GetDeletedSecret(ctx, "gone", nil)
	expect("get deleted while deleting", err, 404, "SecretNotFound", "")
	_, err = c.SetSecret(ctx, "gone", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil)
	expect("set while deleting", err, 409, "Conflict", "ObjectIsBeingDeleted")
	_, err = c.PurgeDeletedSecret(ctx, "gone", nil)
	expect("purge while deleting", err, 409, "Conflict", "ObjectIsBeingDeleted")
	_, err = c.GetSecret(ctx, "gone", "", nil)
	expect("get while deleting", err, 404, "SecretNotFound", "")

	clk.Advance(keyvaultemu.DefaultDeleteLag)
	got, err := c.GetDeletedSecret(ctx, "gone", nil)
	if err != nil || *got.ID != *made.ID || got.Value != nil {
		t.Fatalf("GetDeletedSecret = %+v, %v", got, err)
	}
	_, err = c.SetSecret(ctx, "gone", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil)
	expect("set on a deleted name", err, 409, "Conflict", "ObjectIsDeletedButRecoverable")
	_, err = c.DeleteSecret(ctx, "gone", nil)
	expect("delete a deleted secret", err, 404, "SecretNotFound", "")

	rec, err := c.RecoverDeletedSecret(ctx, "gone", nil)
	if err != nil || rec.Value != nil || *rec.ID != *made.ID {
		t.Fatalf("RecoverDeletedSecret = %+v, %v", rec, err)
	}
	_, err = c.GetSecret(ctx, "gone", "", nil)
	expect("get while recovering", err, 404, "SecretNotFound", "")
	clk.Advance(keyvaultemu.DefaultDeleteLag)
	back, err := c.GetSecret(ctx, "gone", "", nil)
	if err != nil || *back.Value != "keep me" {
		t.Fatalf("GetSecret after recover = %v", err)
	}

	// Delete again, purge, and the name is free once the purge settles.
	if _, err := c.DeleteSecret(ctx, "gone", nil); err != nil {
		t.Fatal(err)
	}
	clk.Advance(keyvaultemu.DefaultDeleteLag)
	if _, err := c.PurgeDeletedSecret(ctx, "gone", nil); err != nil {
		t.Fatalf("PurgeDeletedSecret: %v", err)
	}
	_, err = c.GetDeletedSecret(ctx, "gone", nil)
	expect("get deleted after purge", err, 404, "SecretNotFound", "")
	_, err = c.SetSecret(ctx, "gone", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil)
	expect("set while purging", err, 409, "Conflict", "ObjectIsBeingDeleted")
	_, err = c.PurgeDeletedSecret(ctx, "gone", nil)
	expect("purge twice", err, 404, "SecretNotFound", "")
	clk.Advance(keyvaultemu.DefaultDeleteLag)
	again := set(t, c, "gone", "new life")
	if again.ID.Version() == made.ID.Version() {
		t.Error("a purged name starts a new history")
	}
	_, err = c.RecoverDeletedSecret(ctx, "never-deleted", nil)
	expect("recover a live secret", err, 404, "SecretNotFound", "")
}

func TestSDKListDeletedAndScheduledPurge(t *testing.T) {
	srv, clk := newServer(t, &keyvaultemu.Options{RecoverableDays: 7})
	c := newClient(t, srv, newCredential(srv, clk))
	ctx := context.Background()
	for _, n := range []string{"b-secret", "a-secret", "c-secret"} {
		set(t, c, n, "v")
		if _, err := c.DeleteSecret(ctx, n, nil); err != nil {
			t.Fatal(err)
		}
	}
	list := func() []string {
		var names []string
		pager := c.NewListDeletedSecretPropertiesPager(nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatalf("NextPage: %v", err)
			}
			for _, d := range page.Value {
				if d.ID.Version() != "" || d.RecoveryID == nil || !d.ScheduledPurgeDate.Equal(epoch.Add(7*24*time.Hour)) ||
					*d.Attributes.RecoveryLevel != "CustomizedRecoverable+Purgeable" || *d.Attributes.RecoverableDays != 7 {
					t.Errorf("deleted item = %+v attrs %+v", d, *d.Attributes)
				}
				names = append(names, d.ID.Name())
			}
		}
		return names
	}
	if got := list(); len(got) != 0 {
		t.Errorf("deleted list while deletes settle = %v", got)
	}
	clk.Advance(keyvaultemu.DefaultDeleteLag)
	if got := list(); !slices.Equal(got, []string{"a-secret", "b-secret", "c-secret"}) {
		t.Errorf("deleted list = %v", got)
	}
	clk.Advance(7 * 24 * time.Hour)
	if got := list(); len(got) != 0 {
		t.Errorf("deleted list after the retention = %v", got)
	}
	set(t, c, "a-secret", "reused after the scheduled purge")
}

func TestSDKLimits(t *testing.T) {
	srv, clk := newServer(t, nil)
	c := newClient(t, srv, newCredential(srv, clk))
	tags := func(n, keyLen, valLen int) map[string]*string {
		m := map[string]*string{}
		for i := range n {
			k := fmt.Sprintf("%0*d", keyLen, i)
			m[k] = to.Ptr(strings.Repeat("v", valLen))
		}
		return m
	}
	tests := []struct {
		name   string
		secret string
		params azsecrets.SetSecretParameters
		ok     bool
	}{
		{"LongestName", strings.Repeat("a", 127), azsecrets.SetSecretParameters{Value: to.Ptr("v")}, true},
		{"NameTooLong", strings.Repeat("a", 128), azsecrets.SetSecretParameters{Value: to.Ptr("v")}, false},
		{"Underscore", "bad_name", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, false},
		{"Dot", "bad.name", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, false},
		{"LargestValue", "big", azsecrets.SetSecretParameters{Value: to.Ptr(strings.Repeat("x", 25*1024))}, true},
		{"ValueTooLarge", "big", azsecrets.SetSecretParameters{Value: to.Ptr(strings.Repeat("x", 25*1024+1))}, false},
		{"NoValue", "novalue", azsecrets.SetSecretParameters{}, false},
		{"LongestContentType", "ct", azsecrets.SetSecretParameters{Value: to.Ptr("v"), ContentType: to.Ptr(strings.Repeat("c", 255))}, true},
		{"ContentTypeTooLong", "ct", azsecrets.SetSecretParameters{Value: to.Ptr("v"), ContentType: to.Ptr(strings.Repeat("c", 256))}, false},
		{"FifteenTags", "tags", azsecrets.SetSecretParameters{Value: to.Ptr("v"), Tags: tags(15, 512, 512)}, true},
		{"SixteenTags", "tags", azsecrets.SetSecretParameters{Value: to.Ptr("v"), Tags: tags(16, 2, 1)}, false},
		{"TagNameTooLong", "tags", azsecrets.SetSecretParameters{Value: to.Ptr("v"), Tags: tags(1, 513, 1)}, false},
		{"TagValueTooLong", "tags", azsecrets.SetSecretParameters{Value: to.Ptr("v"), Tags: tags(1, 1, 513)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.SetSecret(context.Background(), tt.secret, tt.params, nil)
			if tt.ok {
				if err != nil {
					t.Fatalf("SetSecret: %v", err)
				}
				return
			}
			status, code, _, msg := serviceError(t, err)
			if status != http.StatusBadRequest || code != "BadParameter" {
				t.Errorf("got %d %s (%s), want 400 BadParameter", status, code, msg)
			}
			if strings.Contains(msg, "xxxx") {
				t.Error("an error message must not quote the value")
			}
		})
	}
	// The limits hold for updates too.
	_, err := c.UpdateSecretProperties(context.Background(), "tags", "", azsecrets.UpdateSecretPropertiesParameters{Tags: tags(16, 2, 1)}, nil)
	if status, code, _, _ := serviceError(t, err); status != 400 || code != "BadParameter" {
		t.Errorf("update with 16 tags = %d %s", status, code)
	}
}

func TestSDKDisabledAndExpired(t *testing.T) {
	srv, clk := newServer(t, nil)
	c := newClient(t, srv, newCredential(srv, clk))
	ctx := context.Background()
	past := epoch.Add(-time.Hour)
	made, err := c.SetSecret(ctx, "old", azsecrets.SetSecretParameters{Value: to.Ptr("still readable"),
		SecretAttributes: &azsecrets.SecretAttributes{Expires: &past}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetSecret(ctx, "old", "", nil)
	if err != nil || *got.Value != "still readable" {
		t.Fatalf("an expired secret is still returned: %v", err)
	}

	if _, err := c.UpdateSecretProperties(ctx, "old", made.ID.Version(), azsecrets.UpdateSecretPropertiesParameters{
		SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(false)}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, version := range []string{"", made.ID.Version()} {
		_, err = c.GetSecret(ctx, "old", version, nil)
		if status, code, inner, _ := serviceError(t, err); status != 403 || code != "Forbidden" || inner != "SecretDisabled" {
			t.Errorf("get disabled %q = %d %s/%s", version, status, code, inner)
		}
	}
	page, err := c.NewListSecretPropertiesPager(nil).NextPage(ctx)
	if err != nil || len(page.Value) != 1 || *page.Value[0].Attributes.Enabled {
		t.Errorf("a disabled secret is listed as disabled: %v", err)
	}
	if _, err := c.UpdateSecretProperties(ctx, "old", "", azsecrets.UpdateSecretPropertiesParameters{
		SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(true)}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetSecret(ctx, "old", "", nil); err != nil {
		t.Errorf("re-enabled: %v", err)
	}
}

func TestSDKInjectedFaults(t *testing.T) {
	srv, clk := newServer(t, nil)
	c := newClient(t, srv, newCredential(srv, clk))
	ctx := context.Background()

	t.Run("500RetriedThenOK", func(t *testing.T) {
		srv.Reset()
		if err := srv.InjectFault(keyvaultemu.Fault{Operation: "setSecret", Status: 500, Count: 2}); err != nil {
			t.Fatal(err)
		}
		set(t, c, "flaky", "v")
		if n := srv.Stats().Operations["setSecret"]; n != 3 {
			t.Errorf("setSecret calls = %d, want 3 (two faults, one success)", n)
		}
		if len(srv.State().Secrets[0].Versions) != 1 {
			t.Error("faulted calls must not store anything")
		}
	})
	t.Run("429RetriedThenOK", func(t *testing.T) {
		srv.Reset()
		set(t, c, "hot", "v")
		if err := srv.Throttle("getSecret", 0, 2); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetSecret(ctx, "hot", "", nil); err != nil {
			t.Fatalf("GetSecret through throttling: %v", err)
		}
		if n := srv.Stats().Operations["getSecret"]; n != 3 {
			t.Errorf("getSecret calls = %d, want 3", n)
		}
	})
	t.Run("500UntilClearedSurfaces", func(t *testing.T) {
		srv.Reset()
		if err := srv.InjectFault(keyvaultemu.Fault{Operation: "*", Status: 503, Code: "ServiceUnavailable", Message: "down for the test"}); err != nil {
			t.Fatal(err)
		}
		_, err := c.GetSecret(ctx, "any", "", nil)
		status, code, _, msg := serviceError(t, err)
		if status != 503 || code != "ServiceUnavailable" || msg != "down for the test" {
			t.Errorf("got %d %s %q", status, code, msg)
		}
		if n := srv.Stats().Operations["getSecret"]; n != 4 {
			t.Errorf("getSecret calls = %d, want 4 (MaxRetries 3)", n)
		}
		srv.ClearFaults()
		set(t, c, "any", "v")
	})
	t.Run("Latency", func(t *testing.T) {
		srv.Reset()
		set(t, c, "slow", "v")
		if err := srv.InjectFault(keyvaultemu.Fault{Operation: "getSecret", Latency: 50 * time.Millisecond, Count: 1}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := c.GetSecret(ctx, "slow", "", nil); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Errorf("latency fault took %v", d)
		}
		if len(srv.Faults()) != 0 {
			t.Error("a fault with Count 1 is spent after one call")
		}
	})
}

func TestSDKRefusesBadTokens(t *testing.T) {
	tests := []struct {
		name     string
		audience string
		tenant   string
		want     string
	}{
		{"WrongAudience", "https://graph.microsoft.com", "", "AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://graph.microsoft.com."},
		{"WrongTenant", "", "99999999-0000-0000-0000-000000000000", "AKV10032: Invalid issuer."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, clk := newServer(t, nil)
			cred := newCredential(srv, clk)
			cred.audience, cred.tenant = tt.audience, tt.tenant
			c := newClient(t, srv, cred)
			_, err := c.SetSecret(context.Background(), "x", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil)
			status, code, _, msg := serviceError(t, err)
			if status != 401 || code != "Unauthorized" || !strings.HasPrefix(msg, tt.want) {
				t.Errorf("got %d %s %q, want 401 Unauthorized %q", status, code, msg, tt.want)
			}
			if len(srv.State().Secrets) != 0 {
				t.Error("a refused request must not store anything")
			}
		})
	}
}

func TestSDKBackupRestore(t *testing.T) {
	srv, clk := newServer(t, &keyvaultemu.Options{DeleteLag: -1})
	c := newClient(t, srv, newCredential(srv, clk))
	ctx := context.Background()
	v1 := set(t, c, "kept", "one").ID.Version()
	clk.Advance(time.Second)
	v2 := set(t, c, "kept", "two").ID.Version()

	b, err := c.BackupSecret(ctx, "kept", nil)
	if err != nil {
		t.Fatalf("BackupSecret: %v", err)
	}
	if strings.Contains(string(b.Value), "one") {
		t.Error("a backup blob must be opaque")
	}
	_, err = c.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: b.Value}, nil)
	if status, code, _, _ := serviceError(t, err); status != 409 || code != "Conflict" {
		t.Errorf("restore over a live secret = %d %s", status, code)
	}
	if _, err := c.DeleteSecret(ctx, "kept", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PurgeDeletedSecret(ctx, "kept", nil); err != nil {
		t.Fatal(err)
	}
	r, err := c.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: b.Value}, nil)
	if err != nil {
		t.Fatalf("RestoreSecret: %v", err)
	}
	if r.ID.Version() != v2 || r.Value != nil {
		t.Errorf("restored = %s", *r.ID)
	}
	for v, want := range map[string]string{v1: "one", v2: "two", "": "two"} {
		got, err := c.GetSecret(ctx, "kept", v, nil)
		if err != nil || *got.Value != want {
			t.Errorf("GetSecret(%q) after restore: %v", v, err)
		}
	}
	_, err = c.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: []byte("not a backup")}, nil)
	if status, code, _, _ := serviceError(t, err); status != 400 || code != "BadParameter" {
		t.Errorf("restore garbage = %d %s", status, code)
	}
}
