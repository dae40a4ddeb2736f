package registrar

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"
)

const day = 24 * time.Hour

func TestIsDue(t *testing.T) {
	svc := New(nil, nil, nil, nil) // RotateBefore 30 days
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	version := func(lifetime, left time.Duration) SecretVersion {
		exp := now.Add(left)
		return SecretVersion{NotBefore: exp.Add(-lifetime), Expires: exp}
	}
	tests := []struct {
		name string
		v    SecretVersion
		want bool
	}{
		{"FreshNinetyDays", version(90*day, 90*day), false},
		{"ThirtyOneDaysLeft", version(90*day, 31*day), false},
		{"ThirtyDaysLeft", version(90*day, 30*day), true},
		{"Expired", version(90*day, -day), true},
		{"ShortLifetimeUsesThird", version(9*day, 4*day), false},
		{"ShortLifetimeDue", version(9*day, 3*day), true},
		{"NoExpiry", SecretVersion{}, false},
		{"NoNotBeforeUsesCreated", SecretVersion{Created: now.Add(-6 * day), Expires: now.Add(2 * day)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := svc.isDue(tt.v, now); got != tt.want {
				t.Errorf("isDue = %v, want %v", got, tt.want)
			}
		})
	}
}

func (e *env) rotate(tb testing.TB, job RotationJob) Outcome {
	tb.Helper()
	body, _ := json.Marshal(job)
	out, err := e.svc.Rotate(context.Background(), body, Delivery{MessageID: job.MessageID(), DeliveryCount: 1})
	if err != nil {
		tb.Fatalf("Rotate: %v", err)
	}
	return out
}

// schedule runs the timer, then delivers every job it sent, in its client's session, as the
// host would.
func (e *env) schedule(tb testing.TB) ScheduleReport {
	tb.Helper()
	rep, err := e.svc.ScheduleRotations(context.Background())
	if err != nil {
		tb.Fatalf("ScheduleRotations: %v", err)
	}
	e.runJobs(tb)
	return rep
}

func (e *env) runJobs(tb testing.TB) {
	tb.Helper()
	rotations, maintenance := e.pub.takeJobs()
	for _, j := range rotations {
		body, _ := json.Marshal(j)
		if _, err := e.svc.Handle(context.Background(), CommandRotate, body, Delivery{MessageID: j.MessageID(), DeliveryCount: 1, SessionID: j.ClientName}); err != nil {
			tb.Fatalf("rotation job %s: %v", j.MessageID(), err)
		}
	}
	for _, j := range maintenance {
		body, _ := json.Marshal(j)
		if _, err := e.svc.Handle(context.Background(), CommandMaintain, body, Delivery{MessageID: j.MessageID(), DeliveryCount: 1, SessionID: j.ClientName}); err != nil {
			tb.Fatalf("maintenance job %s: %v", j.MessageID(), err)
		}
	}
}

func appKeyIDs(a App) []string { return keyIDs(a.Passwords) }

func TestRotateNearExpiry(t *testing.T) {
	e := newEnv(t, nil)
	reg := e.register(t, request("lab-sync", `"secret":{"lifetimeDays":60}`))
	e.clock.Advance(45 * day)
	job := RotationJob{ClientName: "lab-sync", AppID: reg.Event.AppID, KeyID: reg.Event.KeyID, Reason: ReasonNearExpiry}
	out := e.rotate(t, job)

	app := e.dir.app("appreg-lab-sync")
	if len(app.Passwords) != 2 {
		t.Fatalf("passwords = %d, want 2 (old and new overlap)", len(app.Passwords))
	}
	latest, _ := e.store.Latest(context.Background(), "lab-sync-client-secret")
	if latest.KeyID() == reg.Event.KeyID || latest.Tags[KVTagPreviousKeyID] != reg.Event.KeyID || latest.Tags[KVTagLifetimeDays] != "60" {
		t.Errorf("latest tags = %v", latest.Tags)
	}
	if got := latest.Expires.Sub(latest.NotBefore); got != 60*day {
		t.Errorf("new lifetime = %v, want 60 days", got)
	}
	if e.store.value("lab-sync-client-secret") != e.dir.secrets[latest.KeyID()] {
		t.Error("Key Vault does not hold the new password")
	}
	if out.Event.Type != EventRotated || out.Event.KeyID != latest.KeyID() || out.Event.RequestID != job.MessageID() {
		t.Errorf("event = %+v", out.Event)
	}

	// The same job again (a redelivery, or a second scheduler run) adds nothing.
	again := e.rotate(t, job)
	if n := len(e.dir.app("appreg-lab-sync").Passwords); n != 2 || e.store.count("lab-sync-client-secret") != 2 {
		t.Errorf("redelivered job changed state: passwords=%d versions=%d", n, e.store.count("lab-sync-client-secret"))
	}
	if again.Event.KeyID != out.Event.KeyID {
		t.Errorf("redelivery event keyId %s, want %s", again.Event.KeyID, out.Event.KeyID)
	}
}

func TestRotateOnDemandIsIdempotentByTime(t *testing.T) {
	e := newEnv(t, nil)
	e.register(t, request("lab-sync"))
	e.clock.Advance(time.Hour)
	job := RotationJob{ClientName: "lab-sync", Reason: ReasonOnDemand, RequestedAt: e.clock.Now()}
	e.clock.Advance(time.Second)
	e.rotate(t, job)
	e.clock.Advance(time.Minute)
	e.rotate(t, job)
	if n := e.store.count("lab-sync-client-secret"); n != 2 {
		t.Errorf("versions = %d, want 2", n)
	}
}

func TestRotateRevokeOldRemovesAtOnceAndSpacesEdits(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.EditSpacing = 10 * time.Second })
	reg := e.register(t, request("lab-sync"))
	// A person added a password by hand; a compromise revokes it too.
	e.dir.mu.Lock()
	a := e.dir.byUnique("appreg-lab-sync")
	a.Passwords = append(a.Passwords, Password{KeyID: "manual", DisplayName: "portal", Start: e.clock.Now(), End: e.clock.Now().Add(day)})
	e.dir.mu.Unlock()

	out := e.rotate(t, RotationJob{ClientName: "lab-sync", Reason: ReasonCompromised, RevokeOld: true, RequestedAt: e.clock.Now()})
	app := e.dir.app("appreg-lab-sync")
	if ids := appKeyIDs(app); len(ids) != 1 || ids[0] != out.Event.KeyID {
		t.Fatalf("passwords = %v, want only the new %s", ids, out.Event.KeyID)
	}
	retired := e.pub.ofType(EventRetired)
	if len(retired) != 2 || retired[0].Reasons[0].Code != "revoked" {
		t.Fatalf("retired events = %+v", retired)
	}
	if retired[0].KeyID != reg.Event.KeyID && retired[1].KeyID != reg.Event.KeyID {
		t.Errorf("old keyId %s not among retired %+v", reg.Event.KeyID, retired)
	}
	// add (registration), add (rotation), remove, remove: each at least 10 s apart on one app.
	for i := 1; i < len(e.dir.edits); i++ {
		if gap := e.dir.edits[i].Sub(e.dir.edits[i-1]); gap < 10*time.Second {
			t.Errorf("credential edits %d and %d only %v apart", i-1, i, gap)
		}
	}
}

func TestRotateRefusals(t *testing.T) {
	e := newEnv(t, nil)
	e.register(t, request("lab-sync"))
	tests := []struct {
		name string
		body string
		code string
	}{
		{"UnknownClient", `{"clientName":"nobody"}`, RejectAppNotFound},
		{"AppRecreated", `{"clientName":"lab-sync","appId":"99999999-9999-4999-8999-999999999999"}`, RejectAppIDMismatch},
		{"Invalid", `{"clientName":"lab-sync","reason":"whim"}`, RejectInvalidReason},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.svc.Rotate(context.Background(), []byte(tt.body), Delivery{MessageID: "m", DeliveryCount: 1})
			if err != nil {
				t.Fatal(err)
			}
			if out.Event.Type != EventRejected || out.Event.Reasons[0].Code != tt.code {
				t.Errorf("event = %+v, want rejected %s", out.Event, tt.code)
			}
		})
	}
}

func TestScheduleFindsDueSecrets(t *testing.T) {
	e := newEnv(t, nil)
	fresh := e.register(t, request("fresh-one", `"secret":{"lifetimeDays":180}`))
	due := e.register(t, request("due-one", `"secret":{"lifetimeDays":60}`))
	broken := e.register(t, request("broken-one", `"secret":{"lifetimeDays":180}`))
	e.clock.Advance(41 * day) // due-one has 19 days left, inside min(30d, 60d/3=20d)
	// Someone removed broken-one's password in the portal: its secret no longer authenticates.
	e.dir.mu.Lock()
	e.dir.byUnique("appreg-broken-one").Passwords = nil
	e.dir.mu.Unlock()

	rep, err := e.svc.ScheduleRotations(context.Background())
	if err != nil || rep.Apps != 3 || rep.Secrets != 3 || rep.Due != 2 || rep.Failed != 0 {
		t.Errorf("report = %+v, %v", rep, err)
	}
	var ids []string
	for _, j := range e.pub.jobs {
		ids = append(ids, j.MessageID())
		if j.Reason != ReasonNearExpiry {
			t.Errorf("job reason = %q", j.Reason)
		}
	}
	slices.Sort(ids)
	want := []string{"rotate:" + broken.Event.AppID + ":" + broken.Event.KeyID, "rotate:" + due.Event.AppID + ":" + due.Event.KeyID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("job ids = %v, want %v", ids, want)
	}
	_ = fresh
}

func TestRetireAfterGrace(t *testing.T) {
	e := newEnv(t, nil)
	reg := e.register(t, request("lab-sync", `"secret":{"lifetimeDays":60}`))
	e.clock.Advance(45 * day)
	rot := e.rotate(t, RotationJob{ClientName: "lab-sync", AppID: reg.Event.AppID, KeyID: reg.Event.KeyID, Reason: ReasonNearExpiry})

	e.clock.Advance(7*day - time.Minute)
	e.schedule(t)
	if n := len(e.pub.ofType(EventRetired)); n != 0 {
		t.Fatalf("retired %d before RETIRE_AFTER", n)
	}
	e.clock.Advance(time.Minute)
	e.schedule(t)
	if n := len(e.pub.ofType(EventRetired)); n != 1 {
		t.Fatalf("retired %d at RETIRE_AFTER, want 1", n)
	}
	if ids := appKeyIDs(e.dir.app("appreg-lab-sync")); len(ids) != 1 || ids[0] != rot.Event.KeyID {
		t.Errorf("passwords = %v, want only %s", ids, rot.Event.KeyID)
	}
	ev := e.pub.ofType(EventRetired)
	if len(ev) != 1 || ev[0].KeyID != reg.Event.KeyID || ev[0].Reasons[0].Code != "superseded" || ev[0].MessageID() != "retire:"+reg.Event.AppID+":"+reg.Event.KeyID+":retired" {
		t.Errorf("retired events = %+v", ev)
	}
	// Long after, whatever the scheduler did meanwhile, the latest version's password stays:
	// it is what consumers read.
	e.clock.Advance(100 * day)
	e.schedule(t)
	latest, _ := e.store.Latest(context.Background(), "lab-sync-client-secret")
	if _, ok := e.dir.app("appreg-lab-sync").Password(latest.KeyID()); !ok {
		t.Errorf("the latest version's password %s was removed: %v", latest.KeyID(), appKeyIDs(e.dir.app("appreg-lab-sync")))
	}
}

func TestOrphanSweep(t *testing.T) {
	e := newEnv(t, nil)
	reg := e.register(t, request("lab-sync"))
	// A crash between addPassword and the Key Vault write leaves an appreg password nobody holds.
	orphan, err := e.dir.AddPassword(context.Background(), reg.Event.AppObjectID, PasswordSpec{DisplayName: "appreg req-x", Start: e.clock.Now(), End: e.clock.Now().Add(90 * day)})
	if err != nil {
		t.Fatal(err)
	}
	e.dir.mu.Lock()
	a := e.dir.apps[reg.Event.AppObjectID]
	a.Passwords = append(a.Passwords,
		Password{KeyID: "manual-live", DisplayName: "added in portal", Start: e.clock.Now(), End: e.clock.Now().Add(90 * day)},
		Password{KeyID: "manual-expired", DisplayName: "added in portal", Start: e.clock.Now().Add(-90 * day), End: e.clock.Now().Add(15 * time.Minute)})
	e.dir.mu.Unlock()

	e.clock.Advance(14 * time.Minute)
	e.schedule(t)
	if n := len(e.dir.app("appreg-lab-sync").Passwords); n != 4 {
		t.Fatalf("passwords = %d before ORPHAN_AFTER, want 4", n)
	}
	e.clock.Advance(2 * time.Minute)
	e.schedule(t)
	ids := appKeyIDs(e.dir.app("appreg-lab-sync"))
	slices.Sort(ids)
	want := []string{reg.Event.KeyID, "manual-live"}
	slices.Sort(want)
	if retired := len(e.pub.ofType(EventRetired)); !slices.Equal(ids, want) || retired != 2 {
		t.Errorf("passwords = %v (retired %d), want %v: orphan %s and the expired one removed", ids, retired, want, orphan.KeyID)
	}
}

func TestScheduleSweepsAppWithoutSecret(t *testing.T) {
	e := newEnv(t, nil)
	// The process died after addPassword, before the first Key Vault write, and compensation
	// never ran: a managed app holds a password and the vault holds nothing.
	ctx := context.Background()
	app, _, err := e.dir.UpsertApplication(ctx, AppSpec{UniqueName: "appreg-lab-sync", Tags: managedTags(nil, "lab-sync")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.dir.AddPassword(ctx, app.ObjectID, PasswordSpec{DisplayName: "appreg m", Start: e.clock.Now(), End: e.clock.Now().Add(day)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(16 * time.Minute)
	rep := e.schedule(t)
	if rep.Apps != 1 || rep.Maintenance != 1 || rep.Due != 0 || len(e.dir.app("appreg-lab-sync").Passwords) != 0 {
		t.Errorf("report %+v, passwords %v", rep, appKeyIDs(e.dir.app("appreg-lab-sync")))
	}
	if ev := e.pub.ofType(EventRetired); len(ev) != 1 || ev[0].Reasons[0].Code != "orphaned" {
		t.Errorf("retired events = %+v", ev)
	}
}

func TestScheduleTrustsVaultOverListing(t *testing.T) {
	e := newEnv(t, nil)
	reg := e.register(t, request("lab-sync"))
	// Someone edited the secret's tags: the managed listing no longer shows it.
	e.store.mu.Lock()
	vs := e.store.versions["lab-sync-client-secret"]
	delete(vs[len(vs)-1].Tags, KVTagManagedBy)
	e.store.mu.Unlock()
	e.clock.Advance(time.Hour)
	e.schedule(t)
	if ids := appKeyIDs(e.dir.app("appreg-lab-sync")); len(ids) != 1 || ids[0] != reg.Event.KeyID {
		t.Errorf("live password swept: %v", ids)
	}
}

// D5: the scheduler judged a secret against an app listing taken before the registration that
// wrote it had added its password, saw a password that "does not authenticate", and rotated a
// client that had just been registered. The job now re-judges inside the client's session.
func TestScheduledRotationOfAStaleListingDoesNothing(t *testing.T) {
	e := newEnv(t, nil)
	reg := e.register(t, request("lab-sync"))
	stale := e.dir.app("appreg-lab-sync")
	stale.Passwords = nil // what a listing taken mid-registration showed
	e.dir.mu.Lock()
	e.dir.staleList = []App{stale}
	e.dir.mu.Unlock()

	// Within the replication timeout a version's missing password is taken for lag: no job,
	// whose MessageId would otherwise keep duplicate detection from taking the real one later.
	rep, err := e.svc.ScheduleRotations(context.Background())
	if err != nil || rep.Due != 0 {
		t.Fatalf("report %+v %v; a listing behind a version younger than the replication timeout must not send a job", rep, err)
	}
	// Past it, the scheduler sends one, and the job judges again on fresh reads.
	e.clock.Advance(e.svc.opt.ReplicationTimeout + time.Second)
	rep, err = e.svc.ScheduleRotations(context.Background())
	if err != nil || rep.Due != 1 {
		t.Fatalf("report %+v %v; the stale listing should make the scheduler send a job", rep, err)
	}
	e.runJobs(t)
	if ids := appKeyIDs(e.dir.app("appreg-lab-sync")); !slices.Equal(ids, []string{reg.Event.KeyID}) {
		t.Errorf("passwords = %v, want only %s", ids, reg.Event.KeyID)
	}
	if n := e.store.count("lab-sync-client-secret"); n != 1 || len(e.pub.ofType(EventRotated)) != 0 {
		t.Errorf("versions %d, rotated events %d: a fresh client was rotated", n, len(e.pub.ofType(EventRotated)))
	}
}

func TestPlanRetirement(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	pw := func(id, name string, age, left time.Duration) Password {
		return Password{KeyID: id, DisplayName: name, Start: now.Add(-age), End: now.Add(left)}
	}
	ver := func(keyID string, age time.Duration) SecretVersion {
		return SecretVersion{Created: now.Add(-age), Tags: map[string]string{KVTagKeyID: keyID}}
	}
	app := App{Passwords: []Password{
		pw("k1", "appreg a", 100*day, 10*day),  // superseded 8 days ago
		pw("k2", "appreg b", 8*day, 50*day),    // superseded 1 day ago
		pw("k3", "appreg c", 1*day, 60*day),    // latest
		pw("k4", "appreg d", 1*time.Hour, day), // orphan
		pw("k5", "portal", 1*time.Hour, day),   // foreign
		pw("k6", "portal", 100*day, -time.Hour),
	}}
	versions := []SecretVersion{ver("k3", 1*day), ver("k1", 100*day), ver("k2", 8*day)}
	tests := []struct {
		name   string
		latest string
		revoke bool
		want   map[string]string
	}{
		{"Policy", "k3", false, map[string]string{"k1": "superseded", "k4": "orphaned", "k6": "expired"}},
		{"Revoke", "k3", true, map[string]string{"k1": "revoked", "k2": "revoked", "k4": "revoked", "k5": "revoked", "k6": "revoked"}},
		{"LatestExpiredStays", "k6", false, map[string]string{"k1": "superseded", "k4": "orphaned"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]string{}
			for _, r := range planRetirement(app, tt.latest, versions, now, 7*day, 15*time.Minute, tt.revoke) {
				got[r.Password.KeyID] = r.Why
			}
			if len(got) != len(tt.want) {
				t.Fatalf("plan = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("plan = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestScheduleReportsFailuresAndContinues(t *testing.T) {
	e := newEnv(t, nil)
	e.register(t, request("aaa-one", `"secret":{"lifetimeDays":30}`))
	e.register(t, request("bbb-two", `"secret":{"lifetimeDays":30}`))
	e.clock.Advance(25 * day)
	e.pub.mu.Lock()
	e.pub.fail = &Error{Code: CodeUnavailable, Op: "servicebus.send"}
	e.pub.mu.Unlock()
	rep, err := e.svc.ScheduleRotations(context.Background())
	if err == nil || rep.Failed != 2 || rep.Due != 0 {
		t.Errorf("report %+v err %v", rep, err)
	}
	e.pub.mu.Lock()
	e.pub.fail = nil
	e.pub.mu.Unlock()
	if rep := e.schedule(t); rep.Due != 2 {
		t.Errorf("second run report %+v", rep)
	}
}

// D1: a compromised rotation announced itself, and completed its job, while the leaked password
// still signed in; with removal failing, nothing ever removed it before RETIRE_AFTER.
func TestRotateCompromisedAnnouncesOnlyAfterRevocation(t *testing.T) {
	e := newEnv(t, nil)
	old := e.register(t, request("lab-sync")).Event.KeyID
	unavailable := &Error{Code: CodeUnavailable, Op: "graph.removePassword", Message: "HTTP 500"}
	e.dir.failN["remove"] = []error{unavailable, unavailable, unavailable}

	// Three transient failures of the removal are retried inside the delivery; "rotated" comes
	// only after the old password is gone, and after its "retired" event.
	job := RotationJob{ClientName: "lab-sync", Reason: ReasonCompromised, RevokeOld: true, RequestedAt: e.clock.Now()}
	out := e.rotate(t, job)
	if out.Event.Type != EventRotated || !slices.Equal(out.Event.RevokedKeyIDs, []string{old}) {
		t.Fatalf("event = %+v, want rotated revoking %s", out.Event, old)
	}
	if ids := appKeyIDs(e.dir.app("appreg-lab-sync")); !slices.Equal(ids, []string{out.Event.KeyID}) {
		t.Errorf("passwords = %v, want only %s", ids, out.Event.KeyID)
	}
	var order []EventType
	for _, ev := range e.pub.events {
		order = append(order, ev.Type)
	}
	if want := []EventType{EventRegistered, EventRetired, EventRotated}; !slices.Equal(order, want) {
		t.Errorf("events %v, want %v", order, want)
	}
}

func TestRotateCompromisedIsHandedBackUntilRevoked(t *testing.T) {
	e := newEnv(t, nil)
	old := e.register(t, request("lab-sync")).Event.KeyID
	e.dir.failN["remove"] = slices.Repeat([]error{&Error{Code: CodeUnavailable, Op: "graph.removePassword", Message: "HTTP 500"}}, 100000)

	job := RotationJob{ClientName: "lab-sync", Reason: ReasonCompromised, RevokeOld: true, RequestedAt: e.clock.Now()}
	body, _ := json.Marshal(job)
	d := Delivery{MessageID: job.MessageID(), DeliveryCount: 1, SessionID: "lab-sync", EnqueuedTime: e.clock.Now()}
	if _, err := e.svc.Rotate(context.Background(), body, d); err == nil || !Retryable(err) {
		t.Fatalf("Rotate = %v; with the old password still in place the job must be handed back", err)
	}
	if got := e.pub.ofType(EventRotated); len(got) != 0 {
		t.Fatalf("rotated announced while %s still signs in: %+v", old, got)
	}
	latest, _ := e.store.Latest(context.Background(), "lab-sync-client-secret")
	if latest.Tags[KVTagRevokeOld] != "true" {
		t.Fatalf("the new version does not record the pending revocation: %v", latest.Tags)
	}
	// The redelivery finds the secret already rotated and finishes the revocation first.
	e.dir.failN["remove"] = nil
	d.DeliveryCount = 2
	out, err := e.svc.Rotate(context.Background(), body, d)
	if err != nil {
		t.Fatal(err)
	}
	if out.Event.Type != EventRotated || !slices.Equal(out.Event.RevokedKeyIDs, []string{old}) {
		t.Fatalf("event = %+v, want rotated revoking %s", out.Event, old)
	}
	if e.store.count("lab-sync-client-secret") != 2 {
		t.Errorf("versions = %d; the redelivery must not rotate again", e.store.count("lab-sync-client-secret"))
	}
}

func TestRotateCompromisedFailureNamesStillValidPasswords(t *testing.T) {
	e := newEnv(t, nil)
	old := e.register(t, request("lab-sync")).Event.KeyID
	forbidden := &Error{Code: CodeForbidden, Op: "graph.removePassword", Message: "Authorization_RequestDenied"}
	e.dir.failN["remove"] = slices.Repeat([]error{forbidden}, 100000)

	job := RotationJob{ClientName: "lab-sync", Reason: ReasonCompromised, RevokeOld: true, RequestedAt: e.clock.Now()}
	body, _ := json.Marshal(job)
	if _, err := e.svc.Rotate(context.Background(), body, Delivery{MessageID: job.MessageID(), DeliveryCount: 10, EnqueuedTime: e.clock.Now()}); err == nil {
		t.Fatal("Rotate succeeded although the old password could not be removed")
	}
	failed := e.pub.ofType(EventFailed)
	if len(failed) != 1 {
		t.Fatalf("failed events = %+v", failed)
	}
	f := failed[0]
	if !slices.Equal(f.StillValidKeyIDs, []string{old}) || f.Reasons[0].Code != ReasonRevocationIncomplete || f.KeyID == "" || f.KeyID == old || f.SecretURI == "" {
		t.Errorf("failed event = %+v; want the new secret and the still-valid %s", f, old)
	}
	if len(e.pub.ofType(EventRotated)) != 0 {
		t.Error("rotated published for a revocation that failed")
	}
}

func TestScheduleFinishesARevocationWhoseJobDied(t *testing.T) {
	e := newEnv(t, nil)
	old := e.register(t, request("lab-sync")).Event.KeyID
	e.dir.failN["remove"] = slices.Repeat([]error{&Error{Code: CodeUnavailable, Op: "graph.removePassword"}}, 100000)
	job := RotationJob{ClientName: "lab-sync", Reason: ReasonCompromised, RevokeOld: true, RequestedAt: e.clock.Now()}
	body, _ := json.Marshal(job)
	if _, err := e.svc.Rotate(context.Background(), body, Delivery{MessageID: job.MessageID(), DeliveryCount: 1, EnqueuedTime: e.clock.Now()}); err == nil {
		t.Fatal("test premise: the first delivery should fail")
	}
	// The job is never redelivered (its instance died with the message); the scheduler sends a
	// maintenance job, which finishes the revocation.
	e.dir.failN["remove"] = nil
	e.clock.Advance(time.Hour)
	if rep := e.schedule(t); rep.Maintenance != 1 {
		t.Fatalf("report %+v; want one maintenance job", rep)
	}
	if _, ok := e.dir.app("appreg-lab-sync").Password(old); ok {
		t.Fatalf("the compromised password %s survived a scheduler run", old)
	}
	retired := e.pub.ofType(EventRetired)
	if len(retired) != 1 || retired[0].KeyID != old || retired[0].Reasons[0].Code != "revoked" {
		t.Errorf("retired = %+v", retired)
	}
}

// The scheduler's pre-filter must send a maintenance job for a superseded password once
// RetireAfter has passed, even when that is shorter than OrphanAfter.
func TestScheduleRetiresWhenRetireAfterIsShorterThanOrphanAfter(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RetireAfter = time.Hour; o.OrphanAfter = 48 * time.Hour })
	reg := e.register(t, request("lab-sync", `"secret":{"lifetimeDays":60}`))
	rot := e.rotate(t, RotationJob{ClientName: "lab-sync", Reason: ReasonOnDemand, RequestedAt: e.clock.Now()})
	e.clock.Advance(time.Hour + time.Minute)
	if rep := e.schedule(t); rep.Maintenance != 1 {
		t.Fatalf("report %+v; want a maintenance job for the superseded password", rep)
	}
	if ids := appKeyIDs(e.dir.app("appreg-lab-sync")); !slices.Equal(ids, []string{rot.Event.KeyID}) {
		t.Errorf("passwords = %v; %s should be retired", ids, reg.Event.KeyID)
	}
}
