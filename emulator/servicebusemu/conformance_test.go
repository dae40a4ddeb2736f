package servicebusemu

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

const testQueue = "q"

// env is one emulator plus a real azservicebus client for one scenario.
type env struct {
	srv   *Server
	clock *fakeClock
	c     *azservicebus.Client
}

func testConfig() *Config {
	c := &Config{}
	c.AddQueue(testQueue, EntityProperties{MaxDeliveryCount: 3})
	c.AddQueue("dedup", EntityProperties{RequiresDuplicateDetection: true})
	c.AddQueue("expiring", EntityProperties{DefaultMessageTimeToLive: time.Minute, DeadLetteringOnMessageExpiration: true})
	c.AddTopic("events", EntityProperties{}, "a", "b")
	return c
}

// TestConformance drives the emulator with the unmodified azservicebus SDK
// through every Service Bus behaviour the product relies on.
func TestConformance(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, e *env)
	}{
		{"send receive complete", func(t *testing.T, e *env) {
			ctx := testContext(t)
			mustSend(t, ctx, e.c, testQueue, &azservicebus.Message{
				Body: []byte("hello"), MessageID: to.Ptr("m1"), ContentType: to.Ptr("application/json"),
				Subject: to.Ptr("registered"), ApplicationProperties: map[string]any{"k": "v"},
			})
			r := newReceiver(t, e.c, testQueue, nil)
			m := receiveN(t, ctx, r, 1)[0]
			if string(m.Body) != "hello" || m.MessageID != "m1" || *m.ContentType != "application/json" ||
				*m.Subject != "registered" || m.ApplicationProperties["k"] != "v" {
				t.Fatalf("message fields not preserved: %+v", m)
			}
			if m.DeliveryCount != 1 || *m.SequenceNumber != 1 || m.EnqueuedTime == nil || m.LockedUntil == nil {
				t.Fatalf("system properties: count %d seq %v enq %v locked %v", m.DeliveryCount, m.SequenceNumber, m.EnqueuedTime, m.LockedUntil)
			}
			if want := e.clock.Now().Add(DefaultLockDuration); !m.LockedUntil.Equal(want.Truncate(time.Millisecond)) {
				t.Errorf("LockedUntil %v, want %v", m.LockedUntil, want)
			}
			if m.LockToken == [16]byte{} {
				t.Error("no lock token")
			}
			if err := r.CompleteMessage(ctx, m, nil); err != nil {
				t.Fatal(err)
			}
			if st := counts(t, e.srv, testQueue); st != (Counts{}) {
				t.Fatalf("after complete: %+v", st)
			}
		}},
		{"send batch", func(t *testing.T, e *env) {
			ctx := testContext(t)
			s := newSender(t, e.c, testQueue)
			batch, err := s.NewMessageBatch(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range []string{"a", "b", "c"} {
				if err := batch.AddMessage(textMessage(b), nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.SendMessageBatch(ctx, batch, nil); err != nil {
				t.Fatal(err)
			}
			r := newReceiver(t, e.c, testQueue, nil)
			var got []string
			for _, m := range receiveN(t, ctx, r, 3) {
				got = append(got, string(m.Body))
			}
			if strings.Join(got, "") != "abc" {
				t.Fatalf("got %v", got)
			}
		}},
		{"batch respects max message size", func(t *testing.T, e *env) {
			ctx := testContext(t)
			s := newSender(t, e.c, testQueue)
			batch, err := s.NewMessageBatch(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := batch.AddMessage(&azservicebus.Message{Body: make([]byte, maxMessageSize)}, nil); !errors.Is(err, azservicebus.ErrMessageTooLarge) {
				t.Fatalf("oversize AddMessage: %v", err)
			}
		}},
		{"large message spans frames", func(t *testing.T, e *env) {
			ctx := testContext(t)
			body := []byte(strings.Repeat("0123456789", 20000)) // 200 kB > 64 KiB frames
			mustSend(t, ctx, e.c, testQueue, &azservicebus.Message{Body: body})
			r := newReceiver(t, e.c, testQueue, nil)
			m := receiveN(t, ctx, r, 1)[0]
			if string(m.Body) != string(body) {
				t.Fatalf("body of %d bytes came back as %d", len(body), len(m.Body))
			}
		}},
		{"oversize message refused", func(t *testing.T, e *env) {
			ctx := testContext(t)
			s := newSender(t, e.c, testQueue)
			err := s.SendMessage(ctx, &azservicebus.Message{Body: make([]byte, maxMessageSize+1)}, nil)
			if !errors.Is(err, azservicebus.ErrMessageTooLarge) {
				t.Fatalf("got %v", err)
			}
		}},
		{"schedule and receive when due", func(t *testing.T, e *env) {
			ctx := testContext(t)
			s := newSender(t, e.c, testQueue)
			at := e.clock.Now().Add(time.Hour)
			seqs, err := s.ScheduleMessages(ctx, []*azservicebus.Message{textMessage("later")}, at, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(seqs) != 1 || seqs[0] != 1 {
				t.Fatalf("sequence numbers %v", seqs)
			}
			if err := s.SendMessage(ctx, &azservicebus.Message{Body: []byte("via send"), ScheduledEnqueueTime: &at}, nil); err != nil {
				t.Fatal(err)
			}
			if st := counts(t, e.srv, testQueue); st.Scheduled != 2 || st.Active != 0 {
				t.Fatalf("before due: %+v", st)
			}
			r := newReceiver(t, e.c, testQueue, nil)
			peeked, err := r.PeekMessages(ctx, 5, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(peeked) != 2 || peeked[0].State != azservicebus.MessageStateScheduled || !peeked[0].ScheduledEnqueueTime.Equal(at.Truncate(time.Millisecond)) {
				t.Fatalf("peeked %d, first state %v at %v", len(peeked), peeked[0].State, peeked[0].ScheduledEnqueueTime)
			}
			e.clock.Advance(time.Hour)
			msgs := receiveN(t, ctx, r, 2)
			if string(msgs[0].Body) != "later" || *msgs[0].SequenceNumber != seqs[0] || !msgs[0].EnqueuedTime.Equal(at.Truncate(time.Millisecond)) {
				t.Fatalf("got %q seq %d enqueued %v", msgs[0].Body, *msgs[0].SequenceNumber, msgs[0].EnqueuedTime)
			}
		}},
		{"cancel scheduled", func(t *testing.T, e *env) {
			ctx := testContext(t)
			s := newSender(t, e.c, testQueue)
			seqs, err := s.ScheduleMessages(ctx, []*azservicebus.Message{textMessage("x"), textMessage("y")}, e.clock.Now().Add(time.Hour), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.CancelScheduledMessages(ctx, seqs[:1], nil); err != nil {
				t.Fatal(err)
			}
			if st := counts(t, e.srv, testQueue); st.Scheduled != 1 {
				t.Fatalf("after cancel: %+v", st)
			}
			e.clock.Advance(2 * time.Hour)
			r := newReceiver(t, e.c, testQueue, nil)
			if m := receiveN(t, ctx, r, 1)[0]; string(m.Body) != "y" {
				t.Fatalf("got %q", m.Body)
			}
		}},
		{"abandon redelivers with delivery count + 1", func(t *testing.T, e *env) {
			ctx := testContext(t)
			mustSend(t, ctx, e.c, testQueue, textMessage("retry"))
			r := newReceiver(t, e.c, testQueue, nil)
			m := receiveN(t, ctx, r, 1)[0]
			if err := r.AbandonMessage(ctx, m, &azservicebus.AbandonMessageOptions{PropertiesToModify: map[string]any{"attempt": int64(1)}}); err != nil {
				t.Fatal(err)
			}
			m2 := receiveN(t, ctx, r, 1)[0]
			if m2.DeliveryCount != 2 || *m2.SequenceNumber != *m.SequenceNumber || m2.LockToken == m.LockToken {
				t.Fatalf("redelivery: count %d seq %d", m2.DeliveryCount, *m2.SequenceNumber)
			}
			if m2.ApplicationProperties["attempt"] != int64(1) {
				t.Errorf("PropertiesToModify not applied: %v", m2.ApplicationProperties)
			}
		}},
		{"dead-letter after MaxDeliveryCount", func(t *testing.T, e *env) {
			ctx := testContext(t)
			mustSend(t, ctx, e.c, testQueue, textMessage("poison"))
			r := newReceiver(t, e.c, testQueue, nil)
			for i := 1; i <= 3; i++ {
				m := receiveN(t, ctx, r, 1)[0]
				if int(m.DeliveryCount) != i {
					t.Fatalf("attempt %d: DeliveryCount %d", i, m.DeliveryCount)
				}
				if err := r.AbandonMessage(ctx, m, nil); err != nil {
					t.Fatal(err)
				}
			}
			if st := counts(t, e.srv, testQueue); st.Active != 0 || st.DeadLettered != 1 {
				t.Fatalf("stats %+v", st)
			}
			dlq := newReceiver(t, e.c, testQueue, &azservicebus.ReceiverOptions{SubQueue: azservicebus.SubQueueDeadLetter})
			m := receiveN(t, ctx, dlq, 1)[0]
			if *m.DeadLetterReason != "MaxDeliveryCountExceeded" ||
				*m.DeadLetterErrorDescription != "Message could not be consumed after 3 delivery attempts." ||
				m.DeliveryCount != 4 || string(m.Body) != "poison" {
				t.Fatalf("dead letter: reason %q desc %q count %d", *m.DeadLetterReason, *m.DeadLetterErrorDescription, m.DeliveryCount)
			}
			if err := dlq.CompleteMessage(ctx, m, nil); err != nil {
				t.Fatal(err)
			}
			dls, _ := e.srv.DeadLetters(testQueue)
			if len(dls) != 0 {
				t.Fatalf("DLQ not empty: %+v", dls)
			}
		}},
		{"explicit dead-letter and read from the DLQ", func(t *testing.T, e *env) {
			ctx := testContext(t)
			mustSend(t, ctx, e.c, testQueue, &azservicebus.Message{Body: []byte("bad"), MessageID: to.Ptr("req-1")})
			r := newReceiver(t, e.c, testQueue, nil)
			m := receiveN(t, ctx, r, 1)[0]
			err := r.DeadLetterMessage(ctx, m, &azservicebus.DeadLetterOptions{
				Reason: to.Ptr("ValidationFailed"), ErrorDescription: to.Ptr("clientName is invalid"),
			})
			if err != nil {
				t.Fatal(err)
			}
			dls, err := e.srv.DeadLetters(testQueue)
			if err != nil || len(dls) != 1 || dls[0].Reason != "ValidationFailed" || dls[0].MessageID != "req-1" {
				t.Fatalf("DeadLetters: %+v %v", dls, err)
			}
			dlq := newReceiver(t, e.c, testQueue, &azservicebus.ReceiverOptions{SubQueue: azservicebus.SubQueueDeadLetter})
			d := receiveN(t, ctx, dlq, 1)[0]
			if *d.DeadLetterReason != "ValidationFailed" || *d.DeadLetterErrorDescription != "clientName is invalid" || d.MessageID != "req-1" {
				t.Fatalf("DLQ message: %+v", d)
			}
		}},
		{"defer and receive deferred", func(t *testing.T, e *env) {
			ctx := testContext(t)
			mustSend(t, ctx, e.c, testQueue, textMessage("later"))
			r := newReceiver(t, e.c, testQueue, nil)
			m := receiveN(t, ctx, r, 1)[0]
			if err := r.DeferMessage(ctx, m, nil); err != nil {
				t.Fatal(err)
			}
			if st := counts(t, e.srv, testQueue); st.Deferred != 1 {
				t.Fatalf("stats %+v", st)
			}
			got, err := r.ReceiveDeferredMessages(ctx, []int64{*m.SequenceNumber}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || string(got[0].Body) != "later" || got[0].State != azservicebus.MessageStateDeferred || got[0].LockToken == [16]byte{} {
				t.Fatalf("deferred: %+v", got)
			}
			if err := r.CompleteMessage(ctx, got[0], nil); err != nil {
				t.Fatal(err)
			}
			if st := counts(t, e.srv, testQueue); st != (Counts{}) {
				t.Fatalf("after complete: %+v", st)
			}
		}},
		{"renew lock", func(t *testing.T, e *env) {
			ctx := testContext(t)
			mustSend(t, ctx, e.c, testQueue, textMessage("long job"))
			r := newReceiver(t, e.c, testQueue, nil)
			m := receiveN(t, ctx, r, 1)[0]
			first := *m.LockedUntil
			e.clock.Advance(40 * time.Second)
			if err := r.RenewMessageLock(ctx, m, nil); err != nil {
				t.Fatal(err)
			}
			if want := first.Add(40 * time.Second); !m.LockedUntil.Equal(want) {
				t.Fatalf("LockedUntil %v, want %v", m.LockedUntil, want)
			}
			e.clock.Advance(40 * time.Second) // past the first lock, within the renewed one
			if err := r.CompleteMessage(ctx, m, nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"lock lost after expiry", func(t *testing.T, e *env) {
			ctx := testContext(t)
			mustSend(t, ctx, e.c, testQueue, textMessage("slow"))
			r := newReceiver(t, e.c, testQueue, nil)
			m := receiveN(t, ctx, r, 1)[0]
			e.clock.Advance(DefaultLockDuration + time.Second)
			err := r.CompleteMessage(ctx, m, nil)
			if sbCode(err) != azservicebus.CodeLockLost {
				t.Fatalf("complete after expiry: %v", err)
			}
			if err := r.RenewMessageLock(ctx, m, nil); sbCode(err) != azservicebus.CodeLockLost {
				t.Fatalf("renew after expiry: %v", err)
			}
			m2 := receiveN(t, ctx, r, 1)[0]
			if m2.DeliveryCount != 2 {
				t.Fatalf("redelivered with count %d", m2.DeliveryCount)
			}
		}},
		{"ExpireLocks test control", func(t *testing.T, e *env) {
			ctx := testContext(t)
			mustSend(t, ctx, e.c, testQueue, textMessage("x"))
			r := newReceiver(t, e.c, testQueue, nil)
			m := receiveN(t, ctx, r, 1)[0]
			if err := e.srv.ExpireLocks(testQueue); err != nil {
				t.Fatal(err)
			}
			if err := r.CompleteMessage(ctx, m, nil); sbCode(err) != azservicebus.CodeLockLost {
				t.Fatalf("complete after ExpireLocks: %v", err)
			}
		}},
		{"peek", func(t *testing.T, e *env) {
			ctx := testContext(t)
			mustSend(t, ctx, e.c, testQueue, textMessage("1"), textMessage("2"), textMessage("3"))
			r := newReceiver(t, e.c, testQueue, nil)
			got, err := r.PeekMessages(ctx, 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || string(got[0].Body) != "1" || *got[1].SequenceNumber != 2 || got[0].LockedUntil != nil {
				t.Fatalf("first page: %d messages", len(got))
			}
			got, err = r.PeekMessages(ctx, 5, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || string(got[0].Body) != "3" {
				t.Fatalf("second page: %d messages", len(got))
			}
			if st := counts(t, e.srv, testQueue); st.Active != 3 || st.Locked != 0 {
				t.Fatalf("peek changed state: %+v", st)
			}
		}},
		{"duplicate detection", func(t *testing.T, e *env) {
			ctx := testContext(t)
			mustSend(t, ctx, e.c, "dedup",
				&azservicebus.Message{Body: []byte("first"), MessageID: to.Ptr("req-7")},
				&azservicebus.Message{Body: []byte("again"), MessageID: to.Ptr("req-7")},
				&azservicebus.Message{Body: []byte("other"), MessageID: to.Ptr("req-8")})
			if st := counts(t, e.srv, "dedup"); st.Active != 2 {
				t.Fatalf("stats %+v", st)
			}
			e.clock.Advance(DefaultDuplicateWindow + time.Second)
			mustSend(t, ctx, e.c, "dedup", &azservicebus.Message{Body: []byte("after window"), MessageID: to.Ptr("req-7")})
			if st := counts(t, e.srv, "dedup"); st.Active != 3 {
				t.Fatalf("after the window: %+v", st)
			}
		}},
		{"topic fans out to two subscriptions", func(t *testing.T, e *env) {
			ctx := testContext(t)
			mustSend(t, ctx, e.c, "events", &azservicebus.Message{Body: []byte("registered"), Subject: to.Ptr("registered")})
			for _, sub := range []string{"a", "b"} {
				r, err := e.c.NewReceiverForSubscription("events", sub, nil)
				if err != nil {
					t.Fatal(err)
				}
				m := receiveN(t, ctx, r, 1)[0]
				if string(m.Body) != "registered" || *m.Subject != "registered" {
					t.Fatalf("%s got %q", sub, m.Body)
				}
				if err := r.CompleteMessage(ctx, m, nil); err != nil {
					t.Fatal(err)
				}
				r.Close(ctx)
			}
		}},
		{"scheduled topic message fans out when due", func(t *testing.T, e *env) {
			ctx := testContext(t)
			s := newSender(t, e.c, "events")
			at := e.clock.Now().Add(time.Minute)
			if _, err := s.ScheduleMessages(ctx, []*azservicebus.Message{textMessage("later")}, at, nil); err != nil {
				t.Fatal(err)
			}
			if st := counts(t, e.srv, "events/Subscriptions/a"); st.Active != 0 {
				t.Fatalf("delivered before due: %+v", st)
			}
			e.clock.Advance(time.Minute)
			for _, sub := range []string{"a", "b"} {
				waitFor(t, "fan-out to "+sub, func() bool { return counts(t, e.srv, "events/Subscriptions/"+sub).Active == 1 })
			}
		}},
		{"subscription dead-letter queue", func(t *testing.T, e *env) {
			ctx := testContext(t)
			mustSend(t, ctx, e.c, "events", textMessage("bad event"))
			r, err := e.c.NewReceiverForSubscription("events", "b", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close(ctx)
			m := receiveN(t, ctx, r, 1)[0]
			if err := r.DeadLetterMessage(ctx, m, &azservicebus.DeadLetterOptions{Reason: to.Ptr("Unparseable")}); err != nil {
				t.Fatal(err)
			}
			dlq, err := e.c.NewReceiverForSubscription("events", "b", &azservicebus.ReceiverOptions{SubQueue: azservicebus.SubQueueDeadLetter})
			if err != nil {
				t.Fatal(err)
			}
			defer dlq.Close(ctx)
			d := receiveN(t, ctx, dlq, 1)[0]
			if string(d.Body) != "bad event" || *d.DeadLetterReason != "Unparseable" {
				t.Fatalf("got %q reason %v", d.Body, d.DeadLetterReason)
			}
			if st := counts(t, e.srv, "events/Subscriptions/a"); st.Active != 1 || st.DeadLettered != 0 {
				t.Fatalf("subscription a affected: %+v", st)
			}
		}},
		{"closing one receiver leaves its sibling waiting", func(t *testing.T, e *env) {
			// Both receivers share the client's connection; the emulator
			// must keep waking the one that stays.
			ctx := testContext(t)
			stay := newReceiver(t, e.c, testQueue, nil)
			leave := newReceiver(t, e.c, testQueue, nil)
			got := make(chan string, 1)
			go func() {
				msgs, err := stay.ReceiveMessages(ctx, 1, nil)
				if err != nil {
					got <- err.Error()
					return
				}
				got <- string(msgs[0].Body)
			}()
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			leave.ReceiveMessages(short, 1, nil) // grants credit, waits, gives up
			cancel()
			if err := leave.Close(ctx); err != nil {
				t.Fatal(err)
			}
			mustSend(t, ctx, e.c, testQueue, textMessage("for the one that stayed"))
			if body := <-got; body != "for the one that stayed" {
				t.Fatalf("got %q", body)
			}
		}},
		{"receive and delete", func(t *testing.T, e *env) {
			ctx := testContext(t)
			mustSend(t, ctx, e.c, testQueue, textMessage("once"))
			r := newReceiver(t, e.c, testQueue, &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModeReceiveAndDelete})
			m := receiveN(t, ctx, r, 1)[0]
			if string(m.Body) != "once" {
				t.Fatalf("got %q", m.Body)
			}
			if st := counts(t, e.srv, testQueue); st != (Counts{}) {
				t.Fatalf("stats %+v", st)
			}
		}},
		{"TTL expiry dead-letters", func(t *testing.T, e *env) {
			ctx := testContext(t)
			mustSend(t, ctx, e.c, "expiring", textMessage("stale"), &azservicebus.Message{Body: []byte("short"), TimeToLive: to.Ptr(time.Second)})
			e.clock.Advance(2 * time.Second)
			waitFor(t, "short TTL", func() bool { return counts(t, e.srv, "expiring").DeadLettered == 1 })
			e.clock.Advance(time.Minute)
			waitFor(t, "default TTL", func() bool { return counts(t, e.srv, "expiring").DeadLettered == 2 })
			mustSend(t, ctx, e.c, "expiring", textMessage("fresh"))
			r := newReceiver(t, e.c, "expiring", nil)
			m := receiveN(t, ctx, r, 1)[0]
			if m.TimeToLive == nil || *m.TimeToLive != time.Minute || m.ExpiresAt == nil || !m.ExpiresAt.Equal(m.EnqueuedTime.Add(time.Minute)) {
				t.Fatalf("default TTL not reported: ttl %v expires %v", m.TimeToLive, m.ExpiresAt)
			}
			dls, _ := e.srv.DeadLetters("expiring")
			if dls[0].Reason != "TTLExpiredException" {
				t.Fatalf("reason %q", dls[0].Reason)
			}
		}},
		{"reconnect after a dropped connection", func(t *testing.T, e *env) {
			ctx := testContext(t)
			s := newSender(t, e.c, testQueue)
			if err := s.SendMessage(ctx, textMessage("before"), nil); err != nil {
				t.Fatal(err)
			}
			r := newReceiver(t, e.c, testQueue, nil)
			receiveN(t, ctx, r, 1)
			e.srv.DropConnections()
			if err := s.SendMessage(ctx, textMessage("after"), nil); err != nil {
				t.Fatalf("send after drop: %v", err)
			}
			if m := receiveN(t, ctx, r, 1)[0]; string(m.Body) != "after" {
				t.Fatalf("got %q", m.Body)
			}
		}},
		{"links recover after a forced detach", func(t *testing.T, e *env) {
			ctx := testContext(t)
			s := newSender(t, e.c, testQueue)
			r := newReceiver(t, e.c, testQueue, nil)
			if err := s.SendMessage(ctx, textMessage("one"), nil); err != nil {
				t.Fatal(err)
			}
			receiveN(t, ctx, r, 1)
			if err := e.srv.DetachLinks(testQueue, "amqp:link:detach-forced"); err != nil {
				t.Fatal(err)
			}
			if err := s.SendMessage(ctx, textMessage("two"), nil); err != nil {
				t.Fatalf("send after detach: %v", err)
			}
			if m := receiveN(t, ctx, r, 1)[0]; string(m.Body) != "two" {
				t.Fatalf("got %q", m.Body)
			}
		}},
		{"unknown entity", func(t *testing.T, e *env) {
			ctx := testContext(t)
			s := newSender(t, e.c, "nope")
			err := s.SendMessage(ctx, textMessage("x"), nil)
			if sbCode(err) != azservicebus.CodeNotFound {
				t.Fatalf("got %v (code %q)", err, sbCode(err))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			srv := startServer(t, &Options{Config: testConfig(), Now: clock.Now})
			tt.run(t, &env{srv: srv, clock: clock, c: newClient(t, srv.ConnectionString())})
		})
	}
}

func TestWrongKeyRefused(t *testing.T) {
	srv := startServer(t, &Options{Key: "right-key"})
	bad := strings.Replace(srv.ConnectionString(), "right-key", "wrong-key", 1)
	c := newClient(t, bad)
	ctx := testContext(t)
	s, err := c.NewSender(defaultEventsTopic, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.SendMessage(ctx, textMessage("x"), nil)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("send with a wrong key: %v", err)
	}
	if strings.Contains(err.Error(), "wrong-key") || strings.Contains(err.Error(), "right-key") {
		t.Fatal("the error leaks a key")
	}
}
