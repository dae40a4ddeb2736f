package funchost

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"appreg/emulator/servicebusemu"
)

// These tests run the azservicebus adapter, unchanged, against the Service
// Bus emulator: real AMQP on a real socket, real lock tokens and renewals.

// emulatorApp starts the emulator with one queue and stages an app whose
// RegisterApp function listens on it through a connection string.
func emulatorApp(tb testing.TB, props servicebusemu.EntityProperties, host map[string]any) (*testApp, *App, *servicebusemu.Server, *Options, invocations) {
	tb.Helper()
	srv, err := servicebusemu.NewServer(&servicebusemu.Options{
		Config: (&servicebusemu.Config{}).AddQueue("app-registrations", props),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close() })
	settings := baseSettings()
	settings["ServiceBusConnection"] = srv.ConnectionString()
	ta, all := newTestApp(tb, appSpec{
		host:      host,
		functions: map[string]string{"RegisterApp": sbFunction},
		settings:  settings,
	})
	app, err := Load(ta.dir, all)
	if err != nil {
		tb.Fatal(err)
	}
	opts, _ := fastOptions(tb)
	got := make(invocations, 20)
	opts.OnInvocation = func(inv Invocation) { got <- inv }
	return ta, app, srv, opts, got
}

func sendMessage(tb testing.TB, srv *servicebusemu.Server, msg *azservicebus.Message) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	client, err := azservicebus.NewClientFromConnectionString(srv.ConnectionString(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer client.Close(ctx)
	sender, err := client.NewSender("app-registrations", nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := sender.SendMessage(ctx, msg, nil); err != nil {
		tb.Fatal(err)
	}
}

// waitCounts polls the emulator until the queue's counts satisfy ok.
func waitCounts(tb testing.TB, srv *servicebusemu.Server, ok func(servicebusemu.Counts) bool) servicebusemu.Counts {
	tb.Helper()
	deadline := time.Now().Add(waitTime)
	for {
		st, err := srv.Counts("app-registrations")
		if err != nil {
			tb.Fatal(err)
		}
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			tb.Fatalf("queue stats %+v never reached the expected state", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEmulatorCompletesOnSuccess(t *testing.T) {
	ta, app, srv, opts, got := emulatorApp(t, servicebusemu.EntityProperties{}, nil)
	startHost(t, app, opts)
	sendMessage(t, srv, &azservicebus.Message{
		MessageID:             ptr("req-1"),
		Body:                  []byte(`{"clientName":"lab-results-sync"}`),
		ContentType:           ptr("application/json"),
		Subject:               ptr("register"),
		ApplicationProperties: map[string]any{"requestedBy": "alice@example.org"},
	})
	rec := ta.nextRequest(t)
	inv := got.next(t)
	if inv.Outcome != Completed || inv.SettleErr != nil || inv.MessageID != "req-1" || inv.DeliveryCount != 1 {
		t.Fatalf("invocation: %+v", inv)
	}
	var env struct {
		Data     map[string]string
		Metadata map[string]json.RawMessage
	}
	if err := json.Unmarshal(rec.Body, &env); err != nil {
		t.Fatal(err)
	}
	checks := map[string]string{
		"DeliveryCount":         `"1"`,
		"MessageId":             `"\"req-1\""`,
		"ContentType":           `"\"application/json\""`,
		"Label":                 `"\"register\""`,
		"SequenceNumber":        `"1"`,
		"ApplicationProperties": `{"requestedBy":"alice@example.org"}`,
	}
	for k, want := range checks {
		if string(env.Metadata[k]) != want {
			t.Errorf("Metadata.%s = %s, want %s", k, env.Metadata[k], want)
		}
	}
	if want := `"{\"clientName\":\"lab-results-sync\"}"`; env.Data["msg"] != want {
		t.Errorf("Data.msg = %s, want %s", env.Data["msg"], want)
	}
	if len(env.Metadata["LockToken"]) != len(`"\"00000000-0000-0000-0000-000000000000\""`) {
		t.Errorf("LockToken = %s", env.Metadata["LockToken"])
	}
	waitCounts(t, srv, func(s servicebusemu.Counts) bool { return s.Active == 0 && s.Locked == 0 })
}

func TestEmulatorAbandonRedeliversThenDeadLetters(t *testing.T) {
	ta, app, srv, opts, got := emulatorApp(t, servicebusemu.EntityProperties{MaxDeliveryCount: 3}, nil)
	var calls atomic.Int32
	ta.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		calls.Add(1)
		http.Error(w, `{"error":"transient"}`, http.StatusServiceUnavailable)
	})
	startHost(t, app, opts)
	sendMessage(t, srv, &azservicebus.Message{MessageID: ptr("poison"), Body: []byte(`{}`)})
	for want := uint32(1); want <= 3; want++ {
		inv := got.next(t)
		if inv.Outcome != Abandoned || inv.DeliveryCount != want || inv.SettleErr != nil || inv.StatusCode != 503 {
			t.Fatalf("delivery %d: %+v", want, inv)
		}
	}
	st := waitCounts(t, srv, func(s servicebusemu.Counts) bool { return s.DeadLettered == 1 })
	if st.Active != 0 || st.Locked != 0 {
		t.Errorf("stats %+v after dead-lettering", st)
	}
	dl, err := srv.DeadLetters("app-registrations")
	if err != nil || len(dl) != 1 || dl[0].Reason != "MaxDeliveryCountExceeded" || dl[0].MessageID != "poison" {
		t.Fatalf("dead letters %+v, %v", dl, err)
	}
	if calls.Load() != 3 {
		t.Errorf("%d calls, want 3", calls.Load())
	}
}

func TestEmulatorLockRenewal(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for several lock durations")
	}
	const lock = 500 * time.Millisecond
	tests := []struct {
		name    string
		renewal string // maxAutoLockRenewalDuration
		renewed bool
	}{
		{"KeepsALongInvocationsLock", "00:05:00", true},
		// The control: without renewal the emulator does expire the lock,
		// so the case above passes because of renewal.
		{"WithoutRenewalTheLockIsLost", "00:00:00", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ta, app, srv, opts, got := emulatorApp(t, servicebusemu.EntityProperties{LockDuration: lock},
				map[string]any{"extensions": map[string]any{"serviceBus": map[string]any{"maxAutoLockRenewalDuration": tt.renewal}}})
			var calls atomic.Int32
			ta.setHandler(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet {
					return
				}
				if calls.Add(1) == 1 {
					time.Sleep(3 * lock) // the lock would expire twice over
				}
				ta.ok(w, r)
			})
			startHost(t, app, opts)
			sendMessage(t, srv, &azservicebus.Message{MessageID: ptr("long"), Body: []byte(`{}`)})
			if !tt.renewed {
				// The expired lock makes the broker redeliver while the first
				// invocation still runs; that second delivery completes.
				second := got.next(t)
				if second.DeliveryCount != 2 || second.Outcome != Completed || second.SettleErr != nil {
					t.Fatalf("redelivery after the lock expired: %+v", second)
				}
				first := got.next(t)
				if first.DeliveryCount != 1 || first.SettleErr == nil {
					t.Fatalf("completing with an expired lock succeeded: %+v", first)
				}
				return
			}
			inv := got.next(t)
			if inv.Outcome != Completed || inv.SettleErr != nil || inv.DeliveryCount != 1 {
				t.Fatalf("invocation: %+v (settle: %v)", inv, inv.SettleErr)
			}
			select {
			case again := <-got:
				t.Fatalf("redelivered: %+v", again)
			case <-time.After(2 * lock):
			}
			waitCounts(t, srv, func(s servicebusemu.Counts) bool { return s.Active == 0 && s.Locked == 0 })
		})
	}
}

func TestEmulatorTopicSubscription(t *testing.T) {
	srv, err := servicebusemu.NewServer(&servicebusemu.Options{
		Config: (&servicebusemu.Config{}).AddTopic("app-registration-events", servicebusemu.EntityProperties{}, "audit"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	settings := baseSettings()
	settings["EventsConnection"] = srv.ConnectionString()
	ta, all := newTestApp(t, appSpec{
		functions: map[string]string{"Audit": `{"bindings": [{"name": "event", "type": "serviceBusTrigger",
			"topicName": "app-registration-events", "subscriptionName": "audit", "connection": "EventsConnection"}]}`},
		settings: settings,
	})
	app, err := Load(ta.dir, all)
	if err != nil {
		t.Fatal(err)
	}
	opts, _ := fastOptions(t)
	got := make(invocations, 1)
	opts.OnInvocation = func(inv Invocation) { got <- inv }
	startHost(t, app, opts)

	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	client, err := azservicebus.NewClientFromConnectionString(srv.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(ctx)
	sender, err := client.NewSender("app-registration-events", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sender.SendMessage(ctx, &azservicebus.Message{MessageID: ptr("req-1:registered"), Subject: ptr("registered"), Body: []byte(`{}`)}, nil); err != nil {
		t.Fatal(err)
	}
	if rec := ta.nextRequest(t); rec.Path != "/Audit" {
		t.Errorf("path %s, want /Audit", rec.Path)
	}
	if inv := got.next(t); inv.Outcome != Completed || inv.SettleErr != nil || inv.MessageID != "req-1:registered" {
		t.Fatalf("invocation: %+v", inv)
	}
}

// BenchmarkEmulatorThroughput measures messages completed per second
// through funchost (receive, POST to the handler process, complete) with
// the default maxConcurrentCalls of 16 and a handler that answers at once,
// while one sender fills the queue concurrently:
//
//	go test -run XXX -bench EmulatorThroughput -benchtime 3000x ./emulator/funchost/
func BenchmarkEmulatorThroughput(b *testing.B) {
	ta, app, srv, opts, _ := emulatorApp(b, servicebusemu.EntityProperties{}, nil)
	ta.setHandler(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	})
	var done atomic.Int64
	finished := make(chan struct{})
	opts.OnInvocation = func(inv Invocation) {
		if inv.Outcome != Completed {
			b.Errorf("outcome %s: %v", inv.Outcome, inv.Err)
		}
		if done.Add(1) == int64(b.N) {
			close(finished)
		}
	}
	startHost(b, app, opts)
	ctx := context.Background()
	client, err := azservicebus.NewClientFromConnectionString(srv.ConnectionString(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close(ctx)
	sender, err := client.NewSender("app-registrations", nil)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"clientName":"lab-results-sync","displayName":"Lab Results Sync (prod)"}`)
	b.ResetTimer()
	for range b.N {
		if err := sender.SendMessage(ctx, &azservicebus.Message{Body: body}, nil); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-finished:
	case <-time.After(time.Minute):
		b.Fatalf("%d of %d completed", done.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
