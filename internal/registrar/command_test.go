package registrar

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHandleRefusesWhatIsNotACommand(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name, kind, body, session, code string
	}{
		{"UnknownSubject", "rotate-everything", `{"clientName":"lab-sync"}`, "lab-sync", RejectUnknownCommand},
		{"WrongSession", CommandRegister, string(request("lab-sync")), "other-client", RejectSessionMismatch},
		{"WrongSessionRotate", CommandRotate, `{"clientName":"lab-sync"}`, "other-client", RejectSessionMismatch},
		{"WrongSessionMaintain", CommandMaintain, `{"clientName":"lab-sync"}`, "other-client", RejectSessionMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.svc.Handle(context.Background(), tt.kind, []byte(tt.body), Delivery{MessageID: "m-" + tt.name, DeliveryCount: 1, SessionID: tt.session})
			if err != nil {
				t.Fatalf("Handle = %v; a refusal completes the message", err)
			}
			if out.Event.Type != EventRejected || out.Event.Reasons[0].Code != tt.code {
				t.Errorf("event = %+v, want rejected %s", out.Event, tt.code)
			}
		})
	}
	if len(e.dir.calls) != 0 {
		t.Errorf("directory called for refused commands: %v", e.dir.calls)
	}
}

// Issue 12: a redelivered or repeated request whose app, service principal and secret already
// match makes reads only.
func TestRedeliveryOfAnUnchangedRequestWritesNothing(t *testing.T) {
	e := newEnv(t, nil)
	body := request("lab-sync", `"redirectUris":["https://a.example/cb","https://b.example/cb"]`)
	first := e.register(t, body)
	e.dir.calls = map[string]int{}
	again := e.register(t, body)
	if again.Event.KeyID != first.Event.KeyID || !again.Reused {
		t.Errorf("the redelivery issued a new secret: %+v", again)
	}
	for _, write := range []string{"upsert", "sp", "add", "remove"} {
		if n := e.dir.calls[write]; n != 0 {
			t.Errorf("%d %s writes on a redelivery", n, write)
		}
	}
	if reads := e.dir.calls["find"] + e.dir.calls["findsp"]; reads != 2 {
		t.Errorf("%d Graph reads on a redelivery (%v), want 2", reads, e.dir.calls)
	}
	// A changed request writes the app, and only the app.
	e.dir.calls = map[string]int{}
	e.register(t, request("lab-sync", `"displayName":"Changed"`))
	if e.dir.calls["upsert"] != 1 || e.dir.calls["sp"] != 0 || e.dir.calls["add"] != 0 {
		t.Errorf("calls for a changed request: %v", e.dir.calls)
	}
	if got := e.dir.app("appreg-lab-sync").DisplayName; got != "Changed" {
		t.Errorf("displayName = %q", got)
	}
}

func TestEventIDsStayWithinServiceBusLimits(t *testing.T) {
	e := newEnv(t, nil)
	long := strings.Repeat("x", 300)
	out, err := e.svc.Register(context.Background(), []byte(`{"clientName":"Bad Name"}`), Delivery{MessageID: long, DeliveryCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	if id := out.Event.MessageID(); len(id) > 128 || !strings.HasPrefix(id, "msg-") {
		t.Errorf("event MessageId %q (%d chars); Service Bus refuses more than 128", id, len(id))
	}
}

type fakeDeadLetters []DeadLetter

func (f fakeDeadLetters) PeekDeadLetters(_ context.Context, fn func(DeadLetter) error) error {
	for _, d := range f {
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}

// D4: a command whose last delivery was cut off was dead-lettered with no event at all.
func TestScheduleAnnouncesDeadLetters(t *testing.T) {
	var dls fakeDeadLetters
	e := newEnv(t, func(o *Options) { o.DeadLetters = &dls })
	now := e.clock.Now()
	dls = fakeDeadLetters{
		{MessageID: "req-1", Subject: CommandRegister, SessionID: "lab-sync", Body: []byte(`{"requestId":"req-1","clientName":"lab-sync"}`), EnqueuedTime: now.Add(-time.Hour), Reason: "MaxDeliveryCountExceeded", Description: "Message could not be consumed after 10 delivery attempts."},
		{MessageID: "rotate:lab-sync:x", Subject: CommandRotate, SessionID: "lab-sync", Body: []byte(`{}`), EnqueuedTime: now.Add(-2 * time.Hour), Reason: "MaxDeliveryCountExceeded"},
		{MessageID: "ancient", Subject: CommandRegister, SessionID: "lab-sync", Body: []byte(`{}`), EnqueuedTime: now.Add(-72 * time.Hour)},
	}
	rep := e.schedule(t)
	if rep.DeadLettered != 2 {
		t.Errorf("report %+v; want 2 dead letters announced (the third is older than the lookback)", rep)
	}
	var ids []string
	for _, ev := range e.pub.ofType(EventFailed) {
		ids = append(ids, ev.MessageID())
		if ev.ClientName != "lab-sync" || ev.Reasons[0].Code != ReasonDeadLettered || !strings.Contains(ev.Reasons[0].Message, "MaxDeliveryCountExceeded") {
			t.Errorf("failed event %+v", ev)
		}
	}
	slices.Sort(ids)
	if want := []string{"req-1:failed", "rotate:lab-sync:x:failed"}; !slices.Equal(ids, want) {
		t.Errorf("failed events %v, want %v", ids, want)
	}
}

// A tenant policy that caps secret lifetimes makes secrets shorter, instead of failing every
// registration and, every six hours until the secret expires, every rotation.
func TestLifetimePolicyIsRespected(t *testing.T) {
	e := newEnv(t, nil)
	e.dir.maxLifetime = 35 * day // "P35D": below 60, above 30
	out := e.register(t, request("lab-sync", `"secret":{"lifetimeDays":180}`))
	ev := out.Event
	if ev.Type != EventRegistered || len(ev.Reasons) != 1 || ev.Reasons[0].Code != ReasonLifetimeClamped {
		t.Fatalf("event = %+v, want registered with a lifetime_clamped note", ev)
	}
	latest, _ := e.store.Latest(context.Background(), "lab-sync-client-secret")
	if got := latest.Expires.Sub(latest.NotBefore); got != 30*day || !latest.Expires.Equal(ev.ExpiresOn) {
		t.Errorf("secret lasts %v, want the 30 days the policy allows", got)
	}
	if latest.Tags[KVTagLifetimeDays] != "30" {
		t.Errorf("lifetimeDays tag = %q; rotations must keep to what the policy allows", latest.Tags[KVTagLifetimeDays])
	}
	// A policy no lifetime satisfies is a rejection with its remedy, not a retry.
	e.dir.maxLifetime = time.Hour
	out, err := e.svc.Register(context.Background(), request("other-app"), Delivery{MessageID: "req-other-app", DeliveryCount: 1})
	if err != nil {
		t.Fatalf("Register = %v; a policy refusal completes the message", err)
	}
	if out.Event.Type != EventRejected || out.Event.Reasons[0].Code != RejectLifetimePolicy || !strings.Contains(out.Event.Reasons[0].Message, "lifetimeDays") {
		t.Errorf("event = %+v", out.Event)
	}
}

func TestDirectoryRefusalsAreRejectedWithTheirRemedy(t *testing.T) {
	tests := []struct {
		reason, op, remedy string
	}{
		{RejectQuotaExceeded, "upsert", "250 directory objects"},
		{RejectClientNameReserved, "upsert", "deletedItems"},
		{RejectSecretsBlocked, "add", "forbids client secrets"},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			e := newEnv(t, nil)
			e.dir.fail[tt.op] = &Error{Code: CodeInvalid, Reason: tt.reason, Op: "graph." + tt.op, Message: "HTTP 400"}
			out, err := e.svc.Register(context.Background(), request("lab-sync"), Delivery{MessageID: "req-lab-sync", DeliveryCount: 1})
			if err != nil {
				t.Fatalf("Register = %v; a refusal completes the message", err)
			}
			r := out.Event.Reasons
			if out.Event.Type != EventRejected || len(r) != 1 || r[0].Code != tt.reason || !strings.Contains(r[0].Message, tt.remedy) {
				t.Errorf("event = %+v, want rejected %s naming %q", out.Event, tt.reason, tt.remedy)
			}
		})
	}
}

// TestStaleReadDoesNotTakeOverAnApp: the replica that serves the first read may not show an app
// that exists. The registrar then creates, which Graph refuses for a taken uniqueName, and judges
// the app once a replica shows it: someone else's app is left as it was, appreg's own is reused.
func TestStaleReadDoesNotTakeOverAnApp(t *testing.T) {
	tests := []struct {
		name    string
		tags    []string
		want    EventType
		wantTag bool // the app carries appreg:managed afterwards
	}{
		{"NotOurs", []string{"team:payments"}, EventRejected, false},
		{"Ours", managedTags(nil, "lab-sync"), EventRegistered, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			ctx := context.Background()
			if _, _, err := e.dir.UpsertApplication(ctx, AppSpec{UniqueName: "appreg-lab-sync", DisplayName: "hand-made", Tags: tt.tags}); err != nil {
				t.Fatal(err)
			}
			stale := &Error{Code: CodeNotFound, Op: "find", Message: "a replica that has not caught up"}
			e.dir.failN["find"] = []error{stale, stale}
			out, err := e.svc.Register(ctx, request("lab-sync"), Delivery{MessageID: "req-lab-sync", DeliveryCount: 1})
			if err != nil {
				t.Fatalf("Register = %v", err)
			}
			if out.Event.Type != tt.want {
				t.Errorf("event = %+v, want %s", out.Event, tt.want)
			}
			app := e.dir.app("appreg-lab-sync")
			if app.Managed() != tt.wantTag || (!tt.wantTag && app.DisplayName != "hand-made") {
				t.Errorf("app afterwards = %+v", app)
			}
			if n := len(e.dir.apps); n != 1 {
				t.Errorf("%d apps, want the one", n)
			}
		})
	}
}
