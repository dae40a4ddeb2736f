package graph_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"appreg/emulator/graphemu"
	"appreg/internal/graph"
	"appreg/internal/registrar"
)

func spec(client string) registrar.AppSpec {
	return registrar.AppSpec{
		UniqueName:     "appreg-" + client,
		DisplayName:    "Client " + client,
		SignInAudience: "AzureADMyOrg",
		Notes:          "owner: integration team",
		Tags:           []string{registrar.TagManaged, registrar.TagClientPrefix + client},
		RedirectURIs:   []string{"https://" + client + ".example.org/auth/callback"},
	}
}

// wantCode fails unless err is a *registrar.Error with the code.
func wantCode(tb testing.TB, err error, code registrar.Code) *registrar.Error {
	tb.Helper()
	var e *registrar.Error
	if !errors.As(err, &e) {
		tb.Fatalf("error = %v (%T), want *registrar.Error with code %s", err, err, code)
	}
	if e.Code != code {
		tb.Fatalf("code = %s (%v), want %s", e.Code, err, code)
	}
	return e
}

// appOf is the part of an App that an upsert decides, for comparison.
func appOf(a registrar.App) registrar.AppSpec {
	return registrar.AppSpec{
		UniqueName: a.UniqueName, DisplayName: a.DisplayName, SignInAudience: a.SignInAudience,
		Notes: a.Notes, Tags: a.Tags, RedirectURIs: a.RedirectURIs,
	}
}

func TestUpsertApplication(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()

	t.Run("created", func(t *testing.T) {
		want := spec("lab-results-sync")
		app, created, err := e.client.UpsertApplication(ctx, want)
		if err != nil || !created {
			t.Fatalf("UpsertApplication = %v, created %v", err, created)
		}
		if diff := cmp.Diff(want, appOf(app)); diff != "" {
			t.Errorf("created app (-want +got):\n%s", diff)
		}
		if app.ObjectID == "" || app.AppID == "" || len(app.Passwords) != 0 {
			t.Errorf("created app = %+v, want ids and no passwords", app)
		}
		st := e.graph.State()
		i := slices.IndexFunc(st.Applications, func(a graphemu.AppState) bool { return a.ID == app.ObjectID })
		if i < 0 || !slices.Equal(st.Applications[i].Owners, []string{e.spID}) {
			t.Errorf("emulator state: app %s missing or not owned by the caller %s: %+v", app.ObjectID, e.spID, st.Applications)
		}
	})

	t.Run("updated", func(t *testing.T) {
		before, err := e.client.FindApplication(ctx, "appreg-lab-results-sync")
		if err != nil {
			t.Fatal(err)
		}
		want := spec("lab-results-sync")
		want.DisplayName = "Lab Results Sync (prod)"
		want.Notes = ""
		want.RedirectURIs = nil
		want.Tags = append(want.Tags, "team:integration")
		before1 := e.graph.Stats().Operations
		updates, reads := before1[graphemu.OpUpsertApplication], before1[graphemu.OpGetApplication]
		app, created, err := e.client.UpsertApplication(ctx, want)
		if err != nil || created || app.ObjectID != "" {
			t.Fatalf("UpsertApplication = %+v, created %v, %v; an update returns no app", app, created, err)
		}
		after := e.graph.Stats().Operations
		if n, r := after[graphemu.OpUpsertApplication]-updates, after[graphemu.OpGetApplication]-reads; n != 1 || r != 0 {
			t.Errorf("%d upsert requests and %d reads, want 1 and none (a 204 needs no read-back)", n, r)
		}
		found, err := e.client.FindApplication(ctx, want.UniqueName)
		if err != nil {
			t.Fatal(err)
		}
		if found.ObjectID != before.ObjectID || found.AppID != before.AppID {
			t.Errorf("update changed identity: %s/%s, was %s/%s", found.ObjectID, found.AppID, before.ObjectID, before.AppID)
		}
		// Deregistration judges a missing service principal by the app's age.
		if found.Created.IsZero() || !found.Created.Equal(before.Created) {
			t.Errorf("createdDateTime = %v, was %v; want it read, and unchanged by an update", found.Created, before.Created)
		}
		if diff := cmp.Diff(want, appOf(found), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("updated app (-want +got):\n%s", diff)
		}
	})
}

func TestFindApplicationNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	_, err := e.client.FindApplication(context.Background(), "appreg-nobody")
	we := wantCode(t, err, registrar.CodeNotFound)
	if we.Op != "graph.getApplication" || !strings.Contains(we.Message, "Request_ResourceNotFound") {
		t.Errorf("error = %q, want op graph.getApplication and Graph's code", err)
	}
}

func TestUpsertServicePrincipal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	app, _, err := e.client.UpsertApplication(ctx, spec("fhir-reader"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.FindServicePrincipal(ctx, app.AppID); registrar.ErrorCode(err) != registrar.CodeNotFound {
		t.Fatalf("FindServicePrincipal before creation = %v, want not found", err)
	}
	created, err := e.client.UpsertServicePrincipal(ctx, app.AppID)
	if err != nil {
		t.Fatal(err)
	}
	if found, err := e.client.FindServicePrincipal(ctx, app.AppID); err != nil || found != created {
		t.Errorf("FindServicePrincipal = %+v, %v; want %+v", found, err, created)
	}
	if created.ObjectID == "" || created.AppID != app.AppID {
		t.Fatalf("created SP = %+v, want an id and appId %s", created, app.AppID)
	}
	again, err := e.client.UpsertServicePrincipal(ctx, app.AppID)
	if err != nil {
		t.Fatal(err)
	}
	if again != created {
		t.Errorf("second upsert = %+v, want the existing %+v", again, created)
	}
	if n := len(e.graph.State().ServicePrincipals); n != 2 { // the adapter's own and this one
		t.Errorf("%d service principals, want 2", n)
	}
	// A replica that does not show the existing one makes the upsert try to create another:
	// 409. It exists; the adapter reads it rather than failing the registration.
	if err := e.graph.InjectFault(graphemu.Fault{Operation: graphemu.OpUpsertServicePrincipal, Status: http.StatusConflict, Code: "Request_MultipleObjectsWithSameKeyValue",
		Message: "The service principal cannot be created, updated, or restored because the service principal name " + app.AppID + " is already in use.", Count: 1}); err != nil {
		t.Fatal(err)
	}
	if third, err := e.client.UpsertServicePrincipal(ctx, app.AppID); err != nil || third != created {
		t.Errorf("upsert answered 409 = %+v, %v; want the existing %+v", third, err, created)
	}
}

// TestReplicationLag covers the errors Graph gives right after a create: the registrar retries
// CodeReplicating and nothing else, so these must not come back as not-found or invalid.
func TestReplicationLag(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	if err := e.graph.SetReplication(graphemu.Replication{Replicas: 1, MinLag: time.Hour, MaxLag: time.Hour}); err != nil {
		t.Fatal(err)
	}
	app, _, err := e.client.UpsertApplication(ctx, spec("lagging"))
	if err != nil {
		t.Fatal(err)
	}

	_, err = e.client.UpsertServicePrincipal(ctx, app.AppID)
	wantCode(t, err, registrar.CodeReplicating)
	_, err = e.client.AddPassword(ctx, app.ObjectID, registrar.PasswordSpec{DisplayName: "appreg x", End: time.Now().Add(time.Hour)})
	wantCode(t, err, registrar.CodeReplicating)
	err = e.client.RemovePassword(ctx, app.ObjectID, "00000000-0000-0000-0000-000000000001")
	wantCode(t, err, registrar.CodeReplicating)
	// The uniqueName upsert is served by the writable replica, so a redelivered request updates
	// the new app (204) even while reads of it meet the lag.
	if _, created, err := e.client.UpsertApplication(ctx, spec("lagging")); err != nil || created {
		t.Errorf("upsert of a lagging app = created %v, %v; want an update", created, err)
	}
	_, err = e.client.FindApplication(ctx, "appreg-lagging")
	wantCode(t, err, registrar.CodeNotFound)

	e.graph.Replicate()
	sp, err := e.client.UpsertServicePrincipal(ctx, app.AppID)
	if err != nil {
		t.Fatalf("after replication: %v", err)
	}
	if sp.AppID != app.AppID {
		t.Errorf("SP appId = %s, want %s", sp.AppID, app.AppID)
	}

	// A password added moments ago is removable at once: removePassword reaches the writable
	// replica once the app resolves, even while reads do not list the password yet.
	np, err := e.client.AddPassword(ctx, app.ObjectID, registrar.PasswordSpec{DisplayName: "appreg x", End: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.RemovePassword(ctx, app.ObjectID, np.KeyID); err != nil {
		t.Fatalf("removing a password added moments ago: %v", err)
	}
}

func TestPasswords(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	app, _, err := e.client.UpsertApplication(ctx, spec("secret-holder"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.UpsertServicePrincipal(ctx, app.AppID); err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC().Truncate(time.Second)
	ps := registrar.PasswordSpec{DisplayName: "appreg 7d0c4c1e", Start: start, End: start.Add(90 * 24 * time.Hour)}

	np, err := e.client.AddPassword(ctx, app.ObjectID, ps)
	if err != nil {
		t.Fatal(err)
	}
	secret := np.Secret.Reveal()
	if len(secret) < 16 {
		t.Fatalf("secret text is %d characters, want at least 16", len(secret))
	}
	want := registrar.Password{KeyID: np.KeyID, DisplayName: ps.DisplayName, Hint: secret[:3], Start: ps.Start, End: ps.End}
	if diff := cmp.Diff(want, np.Password); diff != "" {
		t.Errorf("new password (-want +got):\n%s", diff)
	}

	t.Run("the secret authenticates", func(t *testing.T) {
		tok, err := e.credential(t, app.AppID, secret).GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
		if err != nil || tok.Token == "" {
			t.Fatalf("token for the new secret: %v", err)
		}
	})

	t.Run("reads carry metadata only", func(t *testing.T) {
		got, err := e.client.FindApplication(ctx, app.UniqueName)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]registrar.Password{want}, got.Passwords); diff != "" {
			t.Errorf("passwords on re-read (-want +got):\n%s", diff)
		}
	})

	t.Run("the secret is never printed", func(t *testing.T) {
		printed := fmt.Sprintf("%v %+v %#v %s %q %x", np, np, np, np.Secret, np.Secret, np.Secret)
		if strings.Contains(printed, secret) {
			t.Error("formatting the NewPassword disclosed the secret")
		}
		logs := e.logs.String()
		if !strings.Contains(logs, "graph.addPassword") {
			t.Fatalf("the debug log has no addPassword record; the check below would prove nothing:\n%s", logs)
		}
		if strings.Contains(logs, secret) {
			t.Error("the secret text appears in the captured logs")
		}
	})

	t.Run("removed", func(t *testing.T) {
		if err := e.client.RemovePassword(ctx, app.ObjectID, np.KeyID); err != nil {
			t.Fatal(err)
		}
		got, err := e.client.FindApplication(ctx, app.UniqueName)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Passwords) != 0 {
			t.Errorf("passwords after remove = %+v, want none", got.Passwords)
		}
	})

	t.Run("removed twice is not found", func(t *testing.T) {
		// The registrar treats CodeNotFound from RemovePassword as "already gone".
		err := e.client.RemovePassword(ctx, app.ObjectID, np.KeyID)
		wantCode(t, err, registrar.CodeNotFound)
	})

	t.Run("bad keyId", func(t *testing.T) {
		err := e.client.RemovePassword(ctx, app.ObjectID, "not-a-guid")
		wantCode(t, err, registrar.CodeInvalid)
	})
}

func TestListManagedApplications(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &graph.Options{PageSize: 2})
	ctx := context.Background()
	var want []string
	for i := range 5 {
		s := spec(fmt.Sprintf("client-%d", i))
		want = append(want, s.UniqueName)
		if _, _, err := e.client.UpsertApplication(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	unmanaged := spec("hand-made")
	unmanaged.Tags = []string{"team:integration"}
	if _, _, err := e.client.UpsertApplication(ctx, unmanaged); err != nil {
		t.Fatal(err)
	}

	t.Run("all pages", func(t *testing.T) {
		pages := e.graph.Stats().Operations[graphemu.OpListApplications]
		var got []string
		err := e.client.ListManagedApplications(ctx, func(a registrar.App) error {
			if !a.Managed() || a.AppID == "" {
				t.Errorf("listed %+v, want managed apps with ids", a)
			}
			got = append(got, a.UniqueName)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("listed apps (-want +got):\n%s", diff)
		}
		if n := e.graph.Stats().Operations[graphemu.OpListApplications] - pages; n != 3 {
			t.Errorf("%d list requests for 5 apps at 2 per page, want 3", n)
		}
	})

	t.Run("callback error stops", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := e.client.ListManagedApplications(ctx, func(registrar.App) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("err = %v after %d calls, want the callback's error after 1", err, calls)
		}
	})
}

// TestFailures drives Graph's error answers through the real SDK pipeline.
func TestFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	app, _, err := e.client.UpsertApplication(ctx, spec("faulty"))
	if err != nil {
		t.Fatal(err)
	}
	find := func() error { _, err := e.client.FindApplication(ctx, app.UniqueName); return err }

	t.Run("429 retried by the SDK", func(t *testing.T) {
		before := e.graph.Stats().Operations[graphemu.OpGetApplication]
		if err := e.graph.Throttle(graphemu.OpGetApplication, time.Second, 1); err != nil {
			t.Fatal(err)
		}
		if err := find(); err != nil {
			t.Fatalf("after one 429 the SDK's retry should succeed: %v", err)
		}
		if n := e.graph.Stats().Operations[graphemu.OpGetApplication] - before; n != 2 {
			t.Errorf("%d requests, want 2 (one 429, one retry)", n)
		}
	})

	t.Run("429 beyond the SDK's retries", func(t *testing.T) {
		if testing.Short() {
			t.Skip("waits 3 s of Retry-After")
		}
		before := e.graph.Stats().Operations[graphemu.OpGetApplication]
		if err := e.graph.Throttle(graphemu.OpGetApplication, time.Second, 4); err != nil {
			t.Fatal(err)
		}
		we := wantCode(t, find(), registrar.CodeThrottled)
		if we.RetryAfter != time.Second {
			t.Errorf("RetryAfter = %v, want 1s from the header", we.RetryAfter)
		}
		if n := e.graph.Stats().Operations[graphemu.OpGetApplication] - before; n != 4 {
			t.Errorf("%d requests, want 4 (the SDK retries 3 times)", n)
		}
	})

	t.Run("500 is unavailable", func(t *testing.T) {
		if err := e.graph.InjectFault(graphemu.Fault{Operation: graphemu.OpAddPassword, Status: http.StatusInternalServerError, Count: 1}); err != nil {
			t.Fatal(err)
		}
		_, err := e.client.AddPassword(ctx, app.ObjectID, registrar.PasswordSpec{DisplayName: "appreg x"})
		wantCode(t, err, registrar.CodeUnavailable)
	})

	t.Run("400 is invalid", func(t *testing.T) {
		bad := spec("faulty")
		bad.SignInAudience = "Everyone"
		_, _, err := e.client.UpsertApplication(ctx, bad)
		wantCode(t, err, registrar.CodeInvalid)
	})

	t.Run("not ours", func(t *testing.T) {
		// Another client with the same permission creates an app; ours may read it but
		// Application.ReadWrite.OwnedBy forbids every write to it.
		other, _, _ := e.newClient(t, "someone-else", nil, roleOwnedBy)
		theirs, _, err := other.UpsertApplication(ctx, spec("theirs"))
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = e.client.UpsertApplication(ctx, spec("theirs"))
		we := wantCode(t, err, registrar.CodeForbidden)
		if !strings.Contains(we.Message, "Authorization_RequestDenied") {
			t.Errorf("message = %q, want Graph's code", we.Message)
		}
		_, err = e.client.AddPassword(ctx, theirs.ObjectID, registrar.PasswordSpec{DisplayName: "appreg x"})
		wantCode(t, err, registrar.CodeForbidden)
		_, err = e.client.UpsertServicePrincipal(ctx, theirs.AppID)
		wantCode(t, err, registrar.CodeForbidden)
	})

	t.Run("connection refused", func(t *testing.T) {
		c, err := graph.New(e.cred, &graph.Options{BaseURL: "https://127.0.0.1:1", HTTPClient: e.graph.Client()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.FindApplication(ctx, "appreg-x")
		wantCode(t, err, registrar.CodeUnavailable)
	})

	t.Run("token refused", func(t *testing.T) {
		c, err := graph.New(e.credential(t, app.AppID, "not-a-secret"), &graph.Options{BaseURL: e.graph.URL(), HTTPClient: e.graph.Client()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.FindApplication(ctx, "appreg-x")
		we := wantCode(t, err, registrar.CodeForbidden)
		// The AADSTS code is what an operator looks up; Entra's description may quote the request.
		if !strings.Contains(we.Error(), "AADSTS7000215") || strings.Contains(we.Error(), "Invalid client secret") || strings.Contains(we.Error(), "Trace ID") {
			t.Errorf("error %q: want the AADSTS code and none of Entra's description", we.Error())
		}
	})
}

// BenchmarkFindApplication is one authenticated Graph read through the whole SDK pipeline over
// TLS to the local emulator; the token is cached after the first call. It measures the adapter's
// and SDK's overhead, not Graph's latency.
func BenchmarkFindApplication(b *testing.B) {
	e := newEnv(b, &graph.Options{Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	s := spec("bench")
	if _, _, err := e.client.UpsertApplication(ctx, s); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.client.FindApplication(ctx, s.UniqueName); err != nil {
			b.Fatal(err)
		}
	}
}
