package servicebus

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

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
		RetryOptions: azservicebus.RetryOptions{MaxRetries: 3, RetryDelay: 50 * time.Millisecond, MaxRetryDelay: 200 * time.Millisecond},
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

func mustSend(tb testing.TB, ctx context.Context, c *azservicebus.Client, entity string, msgs ...*azservicebus.Message) {
	tb.Helper()
	s, err := c.NewSender(entity, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close(ctx)
	for _, m := range msgs {
		if err := s.SendMessage(ctx, m, nil); err != nil {
			tb.Fatalf("send to %s: %v", entity, err)
		}
	}
}

func textMessage(body string) *azservicebus.Message {
	return &azservicebus.Message{Body: []byte(body)}
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
	if errAs(err, &sbErr) {
		return sbErr.Code
	}
	return ""
}

var _ = azcore.ResponseError{}
