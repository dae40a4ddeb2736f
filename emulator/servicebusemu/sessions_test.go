package servicebusemu

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

func sessionMessage(session, body string) *azservicebus.Message {
	return &azservicebus.Message{Body: []byte(body), SessionID: to.Ptr(session)}
}

// TestSessions drives session-enabled entities with the SDK's session
// receivers.
func TestSessions(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, e *env)
	}{
		{"accept a named session, state and lock renewal", func(t *testing.T, e *env) {
			ctx := testContext(t)
			mustSend(t, ctx, e.c, "sessions", sessionMessage("s1", "a"), sessionMessage("s2", "x"), sessionMessage("s1", "b"))
			r, err := e.c.AcceptSessionForQueue(ctx, "sessions", "s1", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close(ctx)
			if r.SessionID() != "s1" {
				t.Fatalf("session %q", r.SessionID())
			}
			if want := e.clock.Now().Add(DefaultLockDuration); r.LockedUntil().Sub(want).Abs() > time.Millisecond {
				t.Fatalf("LockedUntil %v, want %v", r.LockedUntil(), want)
			}
			var bodies []string
			for len(bodies) < 2 {
				msgs, err := r.ReceiveMessages(ctx, 2, nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range msgs {
					if *m.SessionID != "s1" {
						t.Fatalf("message of session %q", *m.SessionID)
					}
					bodies = append(bodies, string(m.Body))
					if err := r.CompleteMessage(ctx, m, nil); err != nil {
						t.Fatal(err)
					}
				}
			}
			if strings.Join(bodies, "") != "ab" {
				t.Fatalf("got %v", bodies)
			}
			if st, err := r.GetSessionState(ctx, nil); err != nil || st != nil {
				t.Fatalf("initial state %q %v", st, err)
			}
			if err := r.SetSessionState(ctx, []byte("step-2"), nil); err != nil {
				t.Fatal(err)
			}
			if st, err := r.GetSessionState(ctx, nil); err != nil || string(st) != "step-2" {
				t.Fatalf("state %q %v", st, err)
			}
			e.clock.Advance(30 * time.Second)
			if err := r.RenewSessionLock(ctx, nil); err != nil {
				t.Fatal(err)
			}
			if want := e.clock.Now().Add(DefaultLockDuration); !r.LockedUntil().Equal(want.Truncate(time.Millisecond)) {
				t.Fatalf("renewed LockedUntil %v, want %v", r.LockedUntil(), want)
			}
		}},
		{"a session message is locked by its session's lock", func(t *testing.T, e *env) {
			// A handler working for minutes on one message keeps it by renewing the session
			// lock, as the Functions host does: its own LockDuration does not apply.
			ctx := testContext(t)
			mustSend(t, ctx, e.c, "sessions", sessionMessage("long", "work"))
			r, err := e.c.AcceptSessionForQueue(ctx, "sessions", "long", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close(ctx)
			msgs, err := r.ReceiveMessages(ctx, 1, nil)
			if err != nil || len(msgs) != 1 {
				t.Fatalf("%v %v", msgs, err)
			}
			for range 3 { // three minutes, three times the lock duration
				e.clock.Advance(50 * time.Second)
				if err := r.RenewSessionLock(ctx, nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.CompleteMessage(ctx, msgs[0], nil); err != nil {
				t.Fatalf("completing a message whose session lock was kept: %v", err)
			}
			// Without renewal the session lock, and the message lock with it, runs out: the
			// message goes back to the session, one delivery spent, for the next receiver.
			mustSend(t, ctx, e.c, "sessions", sessionMessage("long", "more"))
			msgs, err = r.ReceiveMessages(ctx, 1, nil)
			if err != nil || len(msgs) != 1 {
				t.Fatalf("%v %v", msgs, err)
			}
			e.clock.Advance(DefaultLockDuration + time.Second)
			other := newClient(t, e.srv.ConnectionString())
			r2, err := other.AcceptSessionForQueue(ctx, "sessions", "long", nil)
			if err != nil {
				t.Fatalf("accept after the lock ran out: %v", err)
			}
			defer r2.Close(ctx)
			again, err := r2.ReceiveMessages(ctx, 1, nil)
			if err != nil || len(again) != 1 || string(again[0].Body) != "more" || again[0].DeliveryCount != 2 {
				t.Fatalf("after the session lock ran out: %v %v", again, err)
			}
		}},
		{"accept next session", func(t *testing.T, e *env) {
			ctx := testContext(t)
			mustSend(t, ctx, e.c, "sessions", sessionMessage("first", "1"), sessionMessage("second", "2"))
			r1, err := e.c.AcceptNextSessionForQueue(ctx, "sessions", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r1.Close(ctx)
			r2, err := e.c.AcceptNextSessionForQueue(ctx, "sessions", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r2.Close(ctx)
			if r1.SessionID() != "first" || r2.SessionID() != "second" {
				t.Fatalf("sessions %q %q", r1.SessionID(), r2.SessionID())
			}
			msgs, err := r2.ReceiveMessages(ctx, 1, nil)
			if err != nil || string(msgs[0].Body) != "2" {
				t.Fatalf("%v %v", msgs, err)
			}
		}},
		{"next session waits for a message", func(t *testing.T, e *env) {
			ctx := testContext(t)
			done := make(chan *azservicebus.SessionReceiver)
			go func() {
				r, err := e.c.AcceptNextSessionForQueue(ctx, "sessions", nil)
				if err != nil {
					t.Error(err)
				}
				done <- r
			}()
			mustSend(t, ctx, e.c, "sessions", sessionMessage("late", "x"))
			r := <-done
			if r == nil {
				return
			}
			defer r.Close(ctx)
			if r.SessionID() != "late" {
				t.Fatalf("session %q", r.SessionID())
			}
		}},
		{"no session available times out", func(t *testing.T, e *env) {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			_, err := e.c.AcceptNextSessionForQueue(ctx, "sessions", nil)
			if err == nil {
				t.Fatal("accepted a session on an empty queue")
			}
		}},
		{"a locked session cannot be accepted twice", func(t *testing.T, e *env) {
			ctx := testContext(t)
			r, err := e.c.AcceptSessionForQueue(ctx, "sessions", "busy", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close(ctx)
			c2 := newClient(t, e.srv.ConnectionString())
			short, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if _, err := c2.AcceptSessionForQueue(short, "sessions", "busy", nil); err == nil {
				t.Fatal("accepted a locked session")
			}
			r.Close(ctx)
			r2, err := c2.AcceptSessionForQueue(ctx, "sessions", "busy", nil)
			if err != nil {
				t.Fatalf("after close: %v", err)
			}
			r2.Close(ctx)
		}},
		{"session lock expiry", func(t *testing.T, e *env) {
			ctx := testContext(t)
			r, err := e.c.AcceptSessionForQueue(ctx, "sessions", "s", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close(ctx)
			e.clock.Advance(DefaultLockDuration + time.Second)
			// Once the lock has run out, another client can take the session.
			other := newClient(t, e.srv.ConnectionString())
			r2, err := other.AcceptSessionForQueue(ctx, "sessions", "s", nil)
			if err != nil {
				t.Fatalf("accept after expiry: %v", err)
			}
			defer r2.Close(ctx)
		}},
		{"list sessions", func(t *testing.T, e *env) {
			ctx := testContext(t)
			mustSend(t, ctx, e.c, "sessions", sessionMessage("b", "1"), sessionMessage("a", "2"))
			var ids []string
			pager := e.c.NewListSessionsForQueuePager("sessions", nil)
			for pager.More() {
				page, err := pager.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, page.Sessions...)
			}
			if strings.Join(ids, ",") != "a,b" {
				t.Fatalf("sessions %v", ids)
			}
		}},
		{"session entities refuse what they cannot hold", func(t *testing.T, e *env) {
			ctx := testContext(t)
			s := newSender(t, e.c, "sessions")
			if err := s.SendMessage(ctx, textMessage("no session"), nil); err == nil || !strings.Contains(err.Error(), "SessionId") {
				t.Fatalf("send without a session id: %v", err)
			}
			r := newReceiver(t, e.c, "sessions", nil)
			short, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if _, err := r.ReceiveMessages(short, 1, nil); err == nil {
				t.Fatal("a plain receiver attached to a session queue")
			}
			if _, err := e.c.AcceptSessionForQueue(ctx, testQueue, "x", nil); err == nil {
				t.Fatal("a session receiver attached to a plain queue")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			cfg := testConfig().AddQueue("sessions", EntityProperties{RequiresSession: true})
			srv := startServer(t, &Options{Config: cfg, Now: clock.Now})
			tt.run(t, &env{srv: srv, clock: clock, c: newClient(t, srv.ConnectionString())})
		})
	}
}
