package servicebusemu

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

// fakeClock is the emulator's injectable clock for lock, TTL and schedule
// tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().UTC()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// startServer starts an emulator for one test. SB_TRACE=1 traces frames to
// stderr.
func startServer(tb testing.TB, opts *Options) *Server {
	tb.Helper()
	if opts == nil {
		opts = &Options{}
	}
	if os.Getenv("SB_TRACE") != "" && opts.Trace == nil {
		opts.Trace = os.Stderr
	}
	s, err := NewServer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func newClient(tb testing.TB, connStr string) *azservicebus.Client {
	tb.Helper()
	c, err := azservicebus.NewClientFromConnectionString(connStr, &azservicebus.ClientOptions{
		RetryOptions: azservicebus.RetryOptions{MaxRetries: 3, RetryDelay: 20 * time.Millisecond, MaxRetryDelay: 100 * time.Millisecond},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func testContext(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func newSender(tb testing.TB, c *azservicebus.Client, entity string) *azservicebus.Sender {
	tb.Helper()
	s, err := c.NewSender(entity, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func mustSend(tb testing.TB, ctx context.Context, c *azservicebus.Client, entity string, msgs ...*azservicebus.Message) {
	tb.Helper()
	s := newSender(tb, c, entity)
	for _, m := range msgs {
		if err := s.SendMessage(ctx, m, nil); err != nil {
			tb.Fatalf("send to %s: %v", entity, err)
		}
	}
}

func textMessage(body string) *azservicebus.Message {
	return &azservicebus.Message{Body: []byte(body)}
}

func newReceiver(tb testing.TB, c *azservicebus.Client, queue string, opts *azservicebus.ReceiverOptions) *azservicebus.Receiver {
	tb.Helper()
	r, err := c.NewReceiverForQueue(queue, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// receiveN receives exactly n messages within the context's deadline.
func receiveN(tb testing.TB, ctx context.Context, r *azservicebus.Receiver, n int) []*azservicebus.ReceivedMessage {
	tb.Helper()
	var out []*azservicebus.ReceivedMessage
	for len(out) < n {
		msgs, err := r.ReceiveMessages(ctx, n-len(out), nil)
		if err != nil {
			tb.Fatalf("receive: got %d of %d: %v", len(out), n, err)
		}
		out = append(out, msgs...)
	}
	return out
}

func sbCode(err error) azservicebus.Code {
	var sbErr *azservicebus.Error
	if errors.As(err, &sbErr) {
		return sbErr.Code
	}
	return ""
}

// waitFor polls cond until it holds or the test's patience runs out.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func counts(tb testing.TB, s *Server, entity string) Counts {
	tb.Helper()
	st, err := s.Counts(entity)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}
