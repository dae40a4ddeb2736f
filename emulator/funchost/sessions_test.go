package funchost

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"appreg/emulator/servicebusemu"
)

const sessionFunction = `{"bindings": [{
  "name": "command", "type": "serviceBusTrigger", "direction": "in",
  "queueName": "app-commands", "connection": "ServiceBusConnection", "isSessionsEnabled": true
}]}`

// sessionApp runs a session-enabled function against the Service Bus emulator: real session
// receivers, real session locks.
func sessionApp(tb testing.TB, host map[string]any, lock time.Duration) (*testApp, *App, *servicebusemu.Server, *Options, invocations) {
	tb.Helper()
	srv, err := servicebusemu.NewServer(&servicebusemu.Options{
		Config: (&servicebusemu.Config{}).AddQueue("app-commands", servicebusemu.EntityProperties{RequiresSession: true, LockDuration: lock}),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close() })
	settings := baseSettings()
	settings["ServiceBusConnection"] = srv.ConnectionString()
	ta, all := newTestApp(tb, appSpec{host: host, functions: map[string]string{"ClientCommand": sessionFunction}, settings: settings})
	app, err := Load(ta.dir, all)
	if err != nil {
		tb.Fatal(err)
	}
	if !app.Functions[0].ServiceBus.Sessions {
		tb.Fatal("isSessionsEnabled was not read")
	}
	opts, _ := fastOptions(tb)
	got := make(invocations, 100)
	opts.OnInvocation = func(inv Invocation) { got <- inv }
	return ta, app, srv, opts, got
}

func sendToSession(tb testing.TB, srv *servicebusemu.Server, msgs ...*azservicebus.Message) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	client, err := azservicebus.NewClientFromConnectionString(srv.ConnectionString(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer client.Close(ctx)
	sender, err := client.NewSender("app-commands", nil)
	if err != nil {
		tb.Fatal(err)
	}
	for _, m := range msgs {
		if err := sender.SendMessage(ctx, m, nil); err != nil {
			tb.Fatal(err)
		}
	}
}

// sessionCall is what the handler saw of one invocation.
type sessionCall struct {
	session string
	seq     int
	start   time.Time
	end     time.Time
}

// recordSessions answers every invocation after hold, recording its session and body.
func recordSessions(ta *testApp, hold time.Duration, fail func(session string, seq, attempt int) bool) (*sync.Mutex, *[]sessionCall) {
	var mu sync.Mutex
	var calls []sessionCall
	attempts := map[string]int{}
	ta.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			return
		}
		raw, _ := io.ReadAll(r.Body)
		var env struct {
			Data     map[string]json.RawMessage
			Metadata map[string]json.RawMessage
		}
		_ = json.Unmarshal(raw, &env)
		var session, body string
		_ = json.Unmarshal(env.Metadata["SessionId"], &session)
		_ = json.Unmarshal([]byte(session), &session) // strings arrive encoded twice
		_ = json.Unmarshal(env.Data["command"], &body)
		_ = json.Unmarshal([]byte(body), &body)
		seq, _ := strconv.Atoi(body)
		c := sessionCall{session: session, seq: seq, start: time.Now()}
		time.Sleep(hold)
		c.end = time.Now()
		mu.Lock()
		calls = append(calls, c)
		key := fmt.Sprintf("%s/%d", session, seq)
		attempts[key]++
		failed := fail != nil && fail(session, seq, attempts[key])
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if failed {
			w.WriteHeader(http.StatusInternalServerError)
		}
		_, _ = io.WriteString(w, `{"Outputs":{},"Logs":[],"ReturnValue":null}`)
	})
	return &mu, &calls
}

// TestSessionsRunInOrderOneAtATime: a session's messages run one at a time and in the order they
// were sent, a failed one is retried before its session's next, and no more sessions run at once
// than maxConcurrentSessions.
func TestSessionsRunInOrderOneAtATime(t *testing.T) {
	const sessions, perSession = 4, 5
	ta, app, srv, opts, got := sessionApp(t, map[string]any{"extensions": map[string]any{"serviceBus": map[string]any{
		"maxConcurrentSessions": 2, "sessionIdleTimeout": "00:00:00.300",
	}}}, 0)
	// The first try of s1's third message fails: its retry must still come before s1's fourth.
	mu, calls := recordSessions(ta, 15*time.Millisecond, func(session string, seq, attempt int) bool {
		return session == "s1" && seq == 2 && attempt == 1
	})
	startHost(t, app, opts)
	var msgs []*azservicebus.Message
	for i := range perSession {
		for s := range sessions {
			msgs = append(msgs, &azservicebus.Message{Body: []byte(strconv.Itoa(i)), SessionID: ptr(fmt.Sprintf("s%d", s)), MessageID: ptr(fmt.Sprintf("s%d-%d", s, i))})
		}
	}
	sendToSession(t, srv, msgs...)
	abandoned := 0
	for range sessions*perSession + 1 {
		if inv := got.next(t); inv.Outcome == Abandoned {
			abandoned++
		}
	}
	if abandoned != 1 {
		t.Errorf("%d abandoned invocations, want 1", abandoned)
	}
	mu.Lock()
	defer mu.Unlock()
	bySession := map[string][]int{}
	for _, c := range *calls {
		bySession[c.session] = append(bySession[c.session], c.seq)
	}
	for s := range sessions {
		want := []int{0, 1, 2, 3, 4}
		if s == 1 {
			want = []int{0, 1, 2, 2, 3, 4}
		}
		if got := bySession[fmt.Sprintf("s%d", s)]; !slices.Equal(got, want) {
			t.Errorf("session s%d ran %v, want %v", s, got, want)
		}
	}
	// Overlap: within a session never; overall at most maxConcurrentSessions.
	for i, a := range *calls {
		overlapping := 1
		for j, b := range *calls {
			if i == j || !(a.start.Before(b.end) && b.start.Before(a.end)) {
				continue
			}
			if a.session == b.session {
				t.Errorf("two invocations of session %s overlapped", a.session)
			}
			overlapping++
		}
		if overlapping > 2+1 { // timestamps at the edges can touch
			t.Errorf("%d invocations overlapped; maxConcurrentSessions is 2", overlapping)
		}
	}
	deadline := time.Now().Add(waitTime)
	for {
		c, err := srv.Counts("app-commands")
		if err != nil {
			t.Fatal(err)
		}
		if c.Active == 0 && c.Locked == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue counts %+v: messages left behind", c)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSessionLockIsKeptThroughALongInvocation: a handler that works for longer than the lock
// duration keeps its message, because the host renews the session lock meanwhile. (Real time: the
// emulator's lock is one second here.)
func TestSessionLockIsKeptThroughALongInvocation(t *testing.T) {
	if testing.Short() {
		t.Skip("holds an invocation for three seconds")
	}
	ta, app, srv, opts, got := sessionApp(t, map[string]any{"extensions": map[string]any{"serviceBus": map[string]any{
		"sessionIdleTimeout": "00:00:00.300", "maxAutoLockRenewalDuration": "00:05:00",
	}}}, time.Second)
	ta.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			return
		}
		time.Sleep(3 * time.Second) // three lock durations
		ta.ok(w, r)
	})
	startHost(t, app, opts)
	sendToSession(t, srv, &azservicebus.Message{Body: []byte("1"), SessionID: ptr("long"), MessageID: ptr("long-1")})
	if inv := got.next(t); inv.Outcome != Completed || inv.SettleErr != nil || inv.DeliveryCount != 1 {
		t.Fatalf("long invocation: %+v", inv)
	}
	select {
	case inv := <-got:
		t.Fatalf("the message ran again (its lock was lost): %+v", inv)
	case <-time.After(500 * time.Millisecond):
	}
}
