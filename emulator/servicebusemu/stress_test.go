package servicebusemu

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

// TestConcurrentClients runs senders and receivers on several connections at
// once, abandons some messages and drops every connection midway. Delivery
// is at least once: every message must reach a receiver that completes it
// (a complete whose answer was lost with the connection may have succeeded),
// and the queue must end empty.
func TestConcurrentClients(t *testing.T) {
	const senders, perSender, receivers = 4, 150, 8
	const total = senders * perSender
	cfg := (&Config{}).AddQueue("work", EntityProperties{MaxDeliveryCount: 100})
	srv := startServer(t, &Options{Config: cfg})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clients := []*azservicebus.Client{newClient(t, srv.ConnectionString()), newClient(t, srv.ConnectionString())}

	var mu sync.Mutex
	attempted := map[string]bool{} // a complete was sent for the body
	half := make(chan struct{})
	var halfOnce sync.Once
	var wg sync.WaitGroup
	for i := range receivers {
		r := newReceiver(t, clients[i%len(clients)], "work", nil)
		wg.Go(func() {
			for ctx.Err() == nil {
				msgs, err := r.ReceiveMessages(ctx, 5, nil)
				if err != nil {
					continue // a dropped connection; the SDK recovers
				}
				for _, m := range msgs {
					// azservicebus retries a settlement whose link died with
					// its default backoff (seconds) and then fails anyway;
					// give up sooner and let the lock lapse instead.
					sctx, scancel := context.WithTimeout(ctx, time.Second)
					if *m.SequenceNumber%7 == 0 && m.DeliveryCount == 1 {
						_ = r.AbandonMessage(sctx, m, nil)
						scancel()
						continue
					}
					err := r.CompleteMessage(sctx, m, nil)
					scancel()
					if sbCode(err) == azservicebus.CodeLockLost {
						continue // redelivered later
					}
					mu.Lock()
					attempted[string(m.Body)] = true
					if len(attempted) >= total/2 {
						halfOnce.Do(func() { close(half) })
					}
					mu.Unlock()
				}
			}
		})
	}
	var sendWG sync.WaitGroup
	for s := range senders {
		sender := newSender(t, clients[s%len(clients)], "work")
		sendWG.Go(func() {
			for i := range perSender {
				for ctx.Err() == nil {
					if err := sender.SendMessage(ctx, textMessage(fmt.Sprintf("%d-%d", s, i)), nil); err == nil {
						break
					}
				}
			}
		})
	}
	select {
	case <-half:
	case <-ctx.Done():
		t.Fatal("half of the messages were never completed")
	}
	srv.DropConnections()
	sendWG.Wait()
	for {
		mu.Lock()
		n := len(attempted)
		mu.Unlock()
		st := counts(t, srv, "work")
		if n == total && st == (Counts{}) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d of %d messages reached a receiver; queue %+v", n, total, st)
		}
		// Locks held by dropped connections would take a minute to lapse.
		_ = srv.ExpireLocks("work")
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		buf := make([]byte, 1<<22)
		t.Fatalf("receivers did not stop:\n%s", buf[:runtime.Stack(buf, true)])
	}
}
