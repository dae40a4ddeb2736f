package keyvault_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azlog "github.com/Azure/azure-sdk-for-go/sdk/azcore/log"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-cmp/cmp"

	"appreg/emulator/entraemu"
	"appreg/emulator/keyvaultemu"
	"appreg/internal/azauth"
	"appreg/internal/keyvault"
	"appreg/internal/registrar"
)

var versionID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func managedTags(client, keyID string) map[string]string {
	return map[string]string{
		registrar.KVTagManagedBy:    registrar.KVManagedByValue,
		registrar.KVTagClientName:   client,
		registrar.KVTagAppID:        "11111111-1111-1111-1111-111111111111",
		registrar.KVTagAppObjectID:  "22222222-2222-2222-2222-222222222222",
		registrar.KVTagKeyID:        keyID,
		registrar.KVTagTenantID:     "33333333-3333-3333-3333-333333333333",
		registrar.KVTagRequestID:    "7d0c4c1e-5d2a-4d55-9b0e-0f3c2f1d9a10",
		registrar.KVTagLifetimeDays: "90",
	}
}

func TestPutLatestVersions(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	const name = "lab-results-sync-client-secret"
	nbf := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

	var put []registrar.SecretVersion
	values := []string{"abc8Q~" + randomText(34), "def8Q~" + randomText(34)}
	for i, value := range values {
		spec := registrar.SecretSpec{
			ContentType: "text/plain",
			NotBefore:   nbf.Add(time.Duration(i) * time.Hour),
			Expires:     nbf.Add(time.Duration(i)*time.Hour + 90*24*time.Hour),
			Tags:        managedTags("lab-results-sync", fmt.Sprintf("key-%d", i)),
		}
		if i == 1 {
			spec.Tags[registrar.KVTagPreviousKeyID] = "key-0"
		}
		v, err := e.store.Put(ctx, name, registrar.NewSecretValue(value), spec)
		if err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
		want := registrar.SecretVersion{
			Name: name, Version: v.Version, ID: e.kv.URL() + "secrets/" + name + "/" + v.Version, Enabled: true,
			Created: v.Created, NotBefore: spec.NotBefore, Expires: spec.Expires, Tags: spec.Tags,
		}
		if diff := cmp.Diff(want, v); diff != "" {
			t.Errorf("Put %d (-want +got):\n%s", i, diff)
		}
		if !versionID.MatchString(v.Version) || v.Created.IsZero() {
			t.Errorf("Put %d: version %q, created %v", i, v.Version, v.Created)
		}
		put = append(put, v)
	}

	latest, err := e.store.Latest(ctx, name)
	if err != nil {
		t.Fatalf("Latest: %v", err)
	}
	if diff := cmp.Diff(put[1], latest); diff != "" {
		t.Errorf("Latest (-want +got):\n%s", diff)
	}
	if latest.KeyID() != "key-1" || !latest.Managed() {
		t.Errorf("Latest keyId %q managed %v", latest.KeyID(), latest.Managed())
	}

	versions, err := e.store.Versions(ctx, name)
	if err != nil {
		t.Fatalf("Versions: %v", err)
	}
	byVersion := func(a, b registrar.SecretVersion) int { return strings.Compare(a.Version, b.Version) }
	slices.SortFunc(versions, byVersion)
	slices.SortFunc(put, byVersion)
	if diff := cmp.Diff(put, versions); diff != "" {
		t.Errorf("Versions (-want +got):\n%s", diff)
	}

	// The value went in intact: read it back with the SDK directly, comparing without printing.
	got, err := e.sdk.GetSecret(ctx, name, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Value == nil || *got.Value != values[1] || got.ContentType == nil || *got.ContentType != "text/plain" {
		t.Error("the stored value or content type differs from what was put")
	}
}

func TestLatestNotFound(t *testing.T) {
	e := newEnv(t)
	_, err := e.store.Latest(t.Context(), "never-written")
	if !registrar.IsNotFound(err) {
		t.Fatalf("Latest = %v, want CodeNotFound", err)
	}
	if !strings.Contains(err.Error(), "SecretNotFound") {
		t.Errorf("error %q does not name Key Vault's code", err)
	}
	versions, err := e.store.Versions(t.Context(), "never-written")
	if err != nil || len(versions) != 0 {
		t.Errorf("Versions = %v, %v; want none", versions, err)
	}
}

func TestInvalidName(t *testing.T) {
	e := newEnv(t)
	_, err := e.store.Put(t.Context(), "not_valid", registrar.NewSecretValue("x"), registrar.SecretSpec{})
	if registrar.ErrorCode(err) != registrar.CodeInvalid {
		t.Errorf("Put(bad name) = %v, want CodeInvalid", err)
	}
	if calls := e.kv.Stats().Operations["setSecret"]; calls != 0 {
		t.Errorf("bad name reached the vault %d times", calls)
	}
	// A tag over the service's limit is refused by Key Vault itself: 400 → CodeInvalid.
	tags := map[string]string{}
	for i := range 16 {
		tags[fmt.Sprintf("t%d", i)] = "v"
	}
	_, err = e.store.Put(t.Context(), "too-many-tags", registrar.NewSecretValue("x"), registrar.SecretSpec{Tags: tags})
	if registrar.ErrorCode(err) != registrar.CodeInvalid || !strings.Contains(err.Error(), "BadParameter") {
		t.Errorf("Put(16 tags) = %v, want CodeInvalid naming BadParameter", err)
	}
}

func TestListManagedAcrossPages(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	const managed = 30 // more than the service's 25 per page
	want := map[string]string{}
	for i := range managed {
		client := fmt.Sprintf("client-%02d", i)
		name := client + "-client-secret"
		exp := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)
		if _, err := e.store.Put(ctx, name, registrar.NewSecretValue(randomText(40)), registrar.SecretSpec{
			Expires: exp, Tags: managedTags(client, fmt.Sprintf("key-%02d", i)),
		}); err != nil {
			t.Fatal(err)
		}
		want[name] = exp.Format(time.RFC3339)
	}
	// Not ours: no tags, someone else's tag, and a secret whose newest version dropped the tag.
	others := []struct {
		name string
		tags map[string]string
	}{
		{"aaa-untagged", nil},
		{"bbb-other-owner", map[string]string{registrar.KVTagManagedBy: "terraform"}},
		{"client-00-client-secret", map[string]string{"note": "edited by hand"}},
	}
	for _, o := range others {
		if _, err := e.store.Put(ctx, o.name, registrar.NewSecretValue(randomText(10)), registrar.SecretSpec{Tags: o.tags}); err != nil {
			t.Fatal(err)
		}
	}
	delete(want, "client-00-client-secret")

	before := e.kv.Stats().Operations["getSecrets"]
	got := map[string]string{}
	err := e.store.ListManaged(ctx, func(v registrar.SecretVersion) error {
		if v.Version != "" || v.ID != e.kv.URL()+"secrets/"+v.Name {
			t.Errorf("%s: version %q id %q, want a versionless id", v.Name, v.Version, v.ID)
		}
		if v.KeyID() == "" || v.Tags[registrar.KVTagClientName]+"-client-secret" != v.Name {
			t.Errorf("%s: tags %v", v.Name, v.Tags)
		}
		got[v.Name] = v.Expires.Format(time.RFC3339)
		return nil
	})
	if err != nil {
		t.Fatalf("ListManaged: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListManaged (-want +got):\n%s", diff)
	}
	if pages := e.kv.Stats().Operations["getSecrets"] - before; pages != 2 {
		t.Errorf("list took %d pages, want 2", pages)
	}

	stop := errors.New("stop")
	n := 0
	err = e.store.ListManaged(ctx, func(registrar.SecretVersion) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("ListManaged with failing fn = %v after %d calls, want stop after 1", err, n)
	}
}

func TestSoftDeletedNameIsConflict(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	const name = "gone-client-secret"
	if _, err := e.store.Put(ctx, name, registrar.NewSecretValue(randomText(40)), registrar.SecretSpec{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sdk.DeleteSecret(ctx, name, nil); err != nil {
		t.Fatal(err)
	}
	_, err := e.store.Put(ctx, name, registrar.NewSecretValue(randomText(40)), registrar.SecretSpec{})
	if registrar.ErrorCode(err) != registrar.CodeConflict {
		t.Fatalf("Put over a deleted name = %v, want CodeConflict", err)
	}
	for _, s := range []string{"ObjectIsDeletedButRecoverable", "recover or purge", name} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	if _, err := e.store.Latest(ctx, name); !registrar.IsNotFound(err) {
		t.Errorf("Latest of a deleted name = %v, want CodeNotFound", err)
	}
}

func TestServerErrorsAfterAzcoreRetries(t *testing.T) {
	tests := []struct {
		name       string
		fault      keyvaultemu.Fault
		op         func(*env) error
		want       registrar.Code
		calls      int // azcore's first try plus its three retries, or fewer
		retryAfter time.Duration
	}{
		{
			name:  "500 on set",
			fault: keyvaultemu.Fault{Operation: "setSecret", Status: http.StatusInternalServerError},
			op: func(e *env) error {
				_, err := e.store.Put(context.Background(), "s", registrar.NewSecretValue(randomText(40)), registrar.SecretSpec{})
				return err
			},
			want: registrar.CodeUnavailable, calls: 4,
		},
		{
			name:  "503 on list",
			fault: keyvaultemu.Fault{Operation: "getSecrets", Status: http.StatusServiceUnavailable},
			op: func(e *env) error {
				return e.store.ListManaged(context.Background(), func(registrar.SecretVersion) error { return nil })
			},
			want: registrar.CodeUnavailable, calls: 4,
		},
		{
			// Retry-After 0: azcore backs off by its own short delay and still gives up.
			name:  "429 without a wait",
			fault: keyvaultemu.Fault{Operation: "getSecret", Status: http.StatusTooManyRequests},
			op:    func(e *env) error { _, err := e.store.Latest(context.Background(), "s"); return err },
			want:  registrar.CodeThrottled, calls: 4,
		},
		{
			// A Retry-After beyond MaxRetryDelay makes azcore return at once; the hint survives.
			name:  "429 with a long wait",
			fault: keyvaultemu.Fault{Operation: "getSecretVersions", Status: http.StatusTooManyRequests, RetryAfter: 2 * time.Second},
			op:    func(e *env) error { _, err := e.store.Versions(context.Background(), "s"); return err },
			want:  registrar.CodeThrottled, calls: 1, retryAfter: 2 * time.Second,
		},
		{
			name:  "403",
			fault: keyvaultemu.Fault{Operation: "getSecret", Status: http.StatusForbidden, Code: "Forbidden", Message: "Caller is not authorized to perform action on resource."},
			op:    func(e *env) error { _, err := e.store.Latest(context.Background(), "s"); return err },
			want:  registrar.CodeForbidden, calls: 1,
		},
	}
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.kv.Reset()
			if err := e.kv.InjectFault(tt.fault); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err := tt.op(e)
			var re *registrar.Error
			if !errors.As(err, &re) || re.Code != tt.want {
				t.Fatalf("got %v, want %s", err, tt.want)
			}
			if re.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", re.RetryAfter, tt.retryAfter)
			}
			if calls := e.kv.Stats().Operations[tt.fault.Operation]; calls != tt.calls {
				t.Errorf("%s reached the vault %d times, want %d", tt.fault.Operation, calls, tt.calls)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("took %v; retries should be fast here", took)
			}
		})
	}
}

// TestChallengeVerificationStaysOnForRealHosts sends the adapter to a vault name that is not on
// loopback (routed to the emulator by the dialer, as a DNS entry or private endpoint would) and
// expects azsecrets to refuse the emulator's challenge for https://vault.azure.net: the check that
// New switches off for loopback is on for every other host.
func TestChallengeVerificationStaysOnForRealHosts(t *testing.T) {
	e := newEnv(t)
	addr := strings.TrimSuffix(strings.TrimPrefix(e.kv.URL(), "https://"), "/")
	tr := e.http.Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	tr.TLSClientConfig.ServerName = "localhost" // the emulator's certificate names loopback only
	t.Cleanup(tr.CloseIdleConnections)
	store, err := keyvault.New("https://appreg-test.vault.example:443/", e.cred, &keyvault.Options{Transport: &http.Client{Transport: tr}, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Latest(t.Context(), "anything")
	if err == nil || !strings.Contains(err.Error(), "doesn't match the requested domain") {
		t.Fatalf("Latest = %v, want the challenge-resource mismatch", err)
	}
	if calls := e.kv.Stats().Operations["getSecret"]; calls != 0 {
		t.Errorf("an authenticated request reached the vault %d times", calls)
	}
}

// noCredential is never asked for a token: New must fail before any request.
type noCredential struct{}

func (noCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, errors.New("not expected")
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		url  string
		cred azcore.TokenCredential
	}{
		{"plain http", "http://127.0.0.1:1/", noCredential{}},
		{"no host", "https:///", noCredential{}},
		{"not a URL", "://", noCredential{}},
		{"nil credential", "https://127.0.0.1:1/", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := keyvault.New(tt.url, tt.cred, nil); err == nil {
				t.Error("New succeeded")
			}
		})
	}
}

// TestSecretNeverPrinted drives every path a value takes, failures included, with the adapter's
// and the SDK's own logging at full volume, then looks for the values in everything printed.
func TestSecretNeverPrinted(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	azlog.SetListener(func(ev azlog.Event, msg string) { fmt.Fprintf(e.logs, "azcore %s: %s\n", ev, msg) })
	t.Cleanup(func() { azlog.SetListener(nil) })

	var values []string
	put := func(name string) error {
		v := "leak8Q~" + randomText(33)
		values = append(values, v)
		_, err := e.store.Put(ctx, name, registrar.NewSecretValue(v), registrar.SecretSpec{ContentType: "text/plain", Tags: managedTags("c", "k")})
		return err
	}
	var errs []error
	record := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := put("ok-client-secret"); err != nil {
		t.Fatal(err)
	}
	_, err := e.store.Latest(ctx, "ok-client-secret")
	record(err)
	_, err = e.store.Versions(ctx, "ok-client-secret")
	record(err)
	record(e.store.ListManaged(ctx, func(registrar.SecretVersion) error { return nil }))

	for _, f := range []keyvaultemu.Fault{
		{Operation: "setSecret", Status: http.StatusInternalServerError, Count: 4},
		{Operation: "setSecret", Status: http.StatusTooManyRequests, Count: 4},
		{Operation: "setSecret", Status: http.StatusBadRequest, Count: 1},
		{Operation: "setSecret", Status: http.StatusForbidden, Count: 1},
	} {
		if err := e.kv.InjectFault(f); err != nil {
			t.Fatal(err)
		}
		if err := put("ok-client-secret"); err == nil {
			t.Errorf("%d: Put succeeded", f.Status)
		} else {
			errs = append(errs, err)
		}
	}
	if _, err := e.sdk.DeleteSecret(ctx, "ok-client-secret", nil); err != nil {
		t.Fatal(err)
	}
	record(put("ok-client-secret")) // 409 deleted but recoverable
	if len(errs) != 5 {
		t.Errorf("collected %d errors, want 5", len(errs))
	}

	var printed []string
	for _, err := range errs {
		printed = append(printed, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
		for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
			printed = append(printed, u.Error())
		}
		var re *azcore.ResponseError
		if errors.As(err, &re) && re.RawResponse != nil {
			t.Errorf("%v: the wrapped ResponseError still holds the HTTP exchange", err)
		}
	}
	printed = append(printed, e.logs.String())
	if !strings.Contains(e.logs.String(), "keyvault") {
		t.Error("captured no log output; the scan below would prove nothing")
	}
	for _, p := range printed {
		for _, v := range append(values, handlerSecret) {
			if strings.Contains(p, v) {
				t.Fatalf("a secret value was printed (in %d bytes of output)", len(p))
			}
		}
	}
}

// TestTokenFailures covers the step before Key Vault: the challenge asks azidentity for a token
// and the token endpoint refuses (our identity is wrong) or is down.
func TestTokenFailures(t *testing.T) {
	e := newEnv(t)
	wrong := "bad8Q~" + randomText(34)
	badCred, err := azauth.NewCredential(azauth.Options{
		TenantID: e.entra.TenantID(), ClientID: clientID, ClientSecret: wrong,
		AuthorityHost: e.entra.URL(), Transport: e.http, Retry: fastRetry,
	})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := keyvault.New(e.kv.URL(), badCred, &keyvault.Options{Transport: e.http, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Latest(t.Context(), "anything")
	if registrar.ErrorCode(err) != registrar.CodeForbidden || !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Errorf("Latest with a wrong client secret = %v, want CodeForbidden naming AADSTS7000215", err)
	}
	if strings.Contains(fmt.Sprintf("%+v", err), wrong) || strings.Contains(err.Error(), "RESPONSE") {
		t.Error("the error carries the token exchange")
	}

	// A fresh identity with nothing cached, while Entra answers 503.
	if err := e.entra.InjectFault(entraemu.Fault{Operation: entraemu.OpToken, Status: http.StatusServiceUnavailable}); err != nil {
		t.Fatal(err)
	}
	fresh, err := azauth.NewCredential(azauth.Options{
		TenantID: e.entra.TenantID(), ClientID: clientID, ClientSecret: handlerSecret,
		AuthorityHost: e.entra.URL(), Transport: e.http, Retry: fastRetry,
	})
	if err != nil {
		t.Fatal(err)
	}
	down, err := keyvault.New(e.kv.URL(), fresh, &keyvault.Options{Transport: e.http, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	_, err = down.Latest(t.Context(), "anything")
	if registrar.ErrorCode(err) != registrar.CodeUnavailable {
		t.Errorf("Latest while Entra is down = %v, want CodeUnavailable", err)
	}
	if calls := e.kv.Stats().Operations["getSecret"]; calls != 0 {
		t.Errorf("unauthenticated requests counted as calls: %d", calls)
	}
}

// TestLatestOfADisabledSecret: Key Vault refuses to read a disabled current version, as a
// deregistration leaves it; Latest still answers with its metadata, so a second
// deregistration (or a later registration) sees it is disabled instead of failing.
func TestLatestOfADisabledSecret(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	const name = "offboarded-client-secret"
	for i := range 2 {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond) // Key Vault's created times are whole seconds
		}
		if _, err := e.store.Put(ctx, name, registrar.NewSecretValue(randomText(40)), registrar.SecretSpec{Tags: managedTags("offboarded", fmt.Sprintf("key-%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.store.Disable(ctx, name); err != nil {
		t.Fatal(err)
	}
	v, err := e.store.Latest(ctx, name)
	if err != nil {
		t.Fatalf("Latest: %v", err)
	}
	if v.Enabled || v.Tags[registrar.KVTagKeyID] != "key-1" {
		t.Errorf("Latest = %+v, want the disabled newest version", v)
	}
}
