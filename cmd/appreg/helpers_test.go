package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"appreg/internal/testutil"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"appreg/emulator/azemu"
	"appreg/internal/registrar"
	"appreg/internal/servicebus"
)

// These tests run the CLI in-process against the local Azure (emulator/azemu) with the real
// azservicebus client on real sockets. Only the polling intervals are shortened.

const (
	cmdQueue = "app-commands"
	topic    = "app-registration-events"
	testWait = 30 * time.Second
)

type harness struct {
	t         testing.TB
	emu       *azemu.Server
	endpoints string
	env       map[string]string
	sb        *azservicebus.Client
}

func newHarness(tb testing.TB) *harness {
	tb.Helper()
	emu, err := azemu.NewServer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(emu.Close)
	dir := tb.TempDir()
	if err := emu.WriteDir(dir); err != nil {
		tb.Fatal(err)
	}
	sb, err := azservicebus.NewClientFromConnectionString(emu.Endpoints().ServiceBusConnectionString, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sb.Close(context.Background()) })
	ep := filepath.Join(dir, "endpoints.json")
	// A requester's shell may point at a real namespace; an endpoints.json must win over it.
	env := map[string]string{"APPREG_ENDPOINTS": ep, "ServiceBusConnection__fullyQualifiedNamespace": "nowhere.invalid"}
	return &harness{t: tb, emu: emu, endpoints: ep, env: env, sb: sb}
}

type result struct {
	code           int
	stdout, stderr string
}

func (h *harness) getenv(k string) string { return h.env[k] }

// cli is a CLI wired to the harness, with fast polling.
func (h *harness) cli(stdout, stderr *testutil.Buffer) *cli {
	c := newCLI(h.getenv, stdout, stderr)
	c.poll = 20 * time.Millisecond
	c.idle = 500 * time.Millisecond
	return c
}

func (h *harness) run(args ...string) result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	return h.runCtx(ctx, nil, args...)
}

func (h *harness) runCtx(ctx context.Context, stdin []byte, args ...string) result {
	var out, errb testutil.Buffer
	c := h.cli(&out, &errb)
	if stdin != nil {
		c.stdin = bytes.NewReader(stdin)
	}
	code := c.main(ctx, args)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// receive takes the messages on the command queue (sub 0: through its sessions, one client at a
// time, as the host does) or on its dead-letter queue: it waits for want of them, then briefly
// for any more, so a test sees extra messages too.
func (h *harness) receive(entity string, sub azservicebus.SubQueue, want int) []*azservicebus.ReceivedMessage {
	h.t.Helper()
	if sub == 0 {
		return h.receiveSessions(entity, want)
	}
	r, err := h.sb.NewReceiverForQueue(entity, &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModeReceiveAndDelete, SubQueue: sub})
	if err != nil {
		h.t.Fatal(err)
	}
	defer r.Close(context.Background())
	var out []*azservicebus.ReceivedMessage
	for {
		wait := 100 * time.Millisecond
		if len(out) < want {
			wait = testWait
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		// ReceiveAndDelete otherwise lingers a second after the first message for more.
		msgs, err := r.ReceiveMessages(ctx, 100, &azservicebus.ReceiveMessagesOptions{TimeAfterFirstMessage: 20 * time.Millisecond})
		cancel()
		out = append(out, msgs...)
		if len(msgs) == 0 {
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				h.t.Fatal(err)
			}
			return out
		}
	}
}

func (h *harness) receiveSessions(queue string, want int) []*azservicebus.ReceivedMessage {
	h.t.Helper()
	var out []*azservicebus.ReceivedMessage
	deadline := time.Now().Add(testWait)
	for {
		wait := 200 * time.Millisecond
		if len(out) < want {
			wait = time.Until(deadline)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		r, err := h.sb.AcceptNextSessionForQueue(ctx, queue, &azservicebus.SessionReceiverOptions{ReceiveMode: azservicebus.ReceiveModeReceiveAndDelete})
		cancel()
		if err != nil {
			return out // no session has messages
		}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			msgs, _ := r.ReceiveMessages(ctx, 100, &azservicebus.ReceiveMessagesOptions{TimeAfterFirstMessage: 20 * time.Millisecond})
			cancel()
			out = append(out, msgs...)
			if len(msgs) == 0 {
				break
			}
		}
		r.Close(context.Background())
	}
}

// peekSubscription browses the events subscription without taking anything.
func (h *harness) peekSubscription() []*azservicebus.ReceivedMessage {
	h.t.Helper()
	r, err := h.sb.NewReceiverForSubscription(topic, "appreg", nil)
	if err != nil {
		h.t.Fatal(err)
	}
	defer r.Close(context.Background())
	from := int64(0)
	msgs, err := r.PeekMessages(context.Background(), 1000, &azservicebus.PeekMessagesOptions{FromSequenceNumber: &from})
	if err != nil {
		h.t.Fatal(err)
	}
	return msgs
}

func (h *harness) send(entity string, msg *azservicebus.Message) {
	h.t.Helper()
	s, err := h.sb.NewSender(entity, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	defer s.Close(context.Background())
	if err := s.SendMessage(context.Background(), msg, nil); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) publisher() *servicebus.Publisher {
	h.t.Helper()
	p, err := servicebus.NewPublisher(h.sb, topic, cmdQueue, slog.New(slog.DiscardHandler))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

// fakeHandler plays the handler: it takes the command queue's sessions one at a time and
// answers each message with the event decide returns (nil: no answer), published through the
// handler's own Publisher.
func (h *harness) fakeHandler(decide func(msg *azservicebus.ReceivedMessage) *registrar.Event) {
	h.t.Helper()
	pub := h.publisher()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	h.t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			r, err := h.sb.AcceptNextSessionForQueue(ctx, cmdQueue, nil)
			if err != nil {
				continue // none with messages yet, or stopping
			}
			for ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(ctx, 200*time.Millisecond)
				msgs, _ := r.ReceiveMessages(rctx, 10, nil)
				rcancel()
				if len(msgs) == 0 {
					break
				}
				for _, m := range msgs {
					if e := decide(m); e != nil {
						e.OccurredAt = time.Now().UTC()
						if err := pub.Publish(ctx, *e); err != nil {
							return
						}
					}
					_ = r.CompleteMessage(ctx, m, nil)
				}
			}
			r.Close(context.Background())
		}
	}()
}

// bodyOf decodes the request a message carries, for the handler's stand-ins, which run on
// their own goroutines and must not call t.Fatal: a bad body decodes to an empty map.
func bodyOf(m *azservicebus.ReceivedMessage) map[string]string {
	var raw map[string]any
	_ = json.Unmarshal(m.Body, &raw)
	out := map[string]string{}
	for k, v := range raw {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

// requestOf decodes the request a message carries.
func requestOf(tb testing.TB, m *azservicebus.ReceivedMessage) map[string]any {
	tb.Helper()
	var req map[string]any
	if err := json.Unmarshal(m.Body, &req); err != nil {
		tb.Fatalf("body %q: %v", m.Body, err)
	}
	return req
}

func writeFile(tb testing.TB, name, content string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

func repoRoot(tb testing.TB) string {
	tb.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		tb.Fatalf("repository root not found from %s", root)
	}
	return root
}
