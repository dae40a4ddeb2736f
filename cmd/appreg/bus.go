package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"appreg/internal/config"
	"appreg/internal/registrar"
	"appreg/internal/servicebus"
)

// bus is a Service Bus connection with the entity names the CLI works on.
type bus struct {
	client       *azservicebus.Client
	cfg          config.Config
	subscription string
}

// connect builds the Service Bus client from the settings. A connection string (the local
// Azure, or SAS) is used as is; a namespace signs in with DefaultAzureCredential.
func (c *cli) connect(cfg config.Config) (*bus, error) {
	conn := servicebus.Connection{Namespace: cfg.ServiceBusNamespace, ConnectionString: cfg.ServiceBusConnectionString}
	if conn.ConnectionString == "" {
		// The CLI runs at a person's terminal, so the developer-credential chain is the right
		// tool here: az login, azd, Visual Studio Code, or AZURE_CLIENT_* for a pipeline. The
		// handler deliberately does not use it (internal/azauth): in Azure it must act only as
		// its managed identity, never as whoever happens to be signed in on the machine.
		cred, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("signing in to Service Bus: %w", err)
		}
		conn.Credential = cred
	}
	client, err := servicebus.NewClient(conn)
	if err != nil {
		return nil, err
	}
	return &bus{client: client, cfg: cfg, subscription: c.eventsSubscription()}, nil
}

func (b *bus) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.client.Close(ctx)
}

// open loads the settings and connects, for commands that talk to Service Bus.
func (c *cli) open(cf connFlags) (*bus, error) {
	cfg, err := c.settings(cf.endpoints, true)
	if err != nil {
		return nil, err
	}
	return c.connect(cfg)
}

// queued is one message for the command queue.
type queued struct {
	id, subject, session string
	body                 []byte
	props                map[string]any
}

// sendCommand sends one JSON command to the client's session on a queue: the queue requires a
// SessionId, and the client's name is what serialises its commands.
func (b *bus) sendCommand(ctx context.Context, queue string, c queued) error {
	s, err := b.client.NewSender(queue, nil)
	if err != nil {
		return fmt.Errorf("sender for %s: %w", queue, err)
	}
	defer s.Close(context.WithoutCancel(ctx))
	ct := "application/json"
	if err := s.SendMessage(ctx, &azservicebus.Message{
		MessageID:             &c.id,
		Subject:               &c.subject,
		SessionID:             &c.session,
		ContentType:           &ct,
		Body:                  c.body,
		ApplicationProperties: c.props,
	}, nil); err != nil {
		return fmt.Errorf("sending to %s: %w", queue, err)
	}
	return nil
}

// seenEvent is one outcome event as peeked from the events subscription.
type seenEvent struct {
	SequenceNumber int64           `json:"sequenceNumber"`
	EnqueuedTime   time.Time       `json:"enqueuedTime"`
	MessageID      string          `json:"messageId"`
	Subject        string          `json:"subject,omitempty"`
	Event          registrar.Event `json:"event"`
	unreadable     bool
}

// watcher reads the events subscription by peeking, from a sequence number it advances. It
// never receives: completing events from a shared subscription would take them from every
// other requester waiting on it.
type watcher struct {
	recv *azservicebus.Receiver
	next int64
}

// peekPage is how many events one peek asks for; the service caps a reply anyway.
const peekPage = 250

func (b *bus) watch() (*watcher, error) {
	r, err := b.client.NewReceiverForSubscription(b.cfg.EventsTopic, b.subscription, nil)
	if err != nil {
		return nil, fmt.Errorf("receiver for %s/subscriptions/%s: %w", b.cfg.EventsTopic, b.subscription, err)
	}
	return &watcher{recv: r}, nil
}

func (w *watcher) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = w.recv.Close(ctx)
}

// skipToEnd moves the watcher past every event already retained, without reading them: a
// requester waiting for one outcome must not page through days of other people's events first
// (a second per 10,000). Peeking one message at a sequence number says whether any event sits at
// or after it, so a doubling search then a bisection find the newest in about 2·log2(n) peeks.
func (w *watcher) skipToEnd(ctx context.Context) error {
	probe := func(from int64) (int64, bool, error) {
		msgs, err := w.recv.PeekMessages(ctx, 1, &azservicebus.PeekMessagesOptions{FromSequenceNumber: &from})
		if err != nil {
			return 0, false, fmt.Errorf("peeking events: %w", err)
		}
		if len(msgs) == 0 || msgs[0].SequenceNumber == nil {
			return 0, false, nil
		}
		return *msgs[0].SequenceNumber, true, nil
	}
	last, found, err := probe(w.next)
	if err != nil || !found {
		return err
	}
	// Invariant: an event sits at last; none at or after last+step once the doubling stops.
	step := int64(1)
	for {
		s, found, err := probe(last + step)
		if err != nil {
			return err
		}
		if !found {
			break
		}
		last, step = s, step*2
	}
	lo, hi := last, last+step
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		s, found, err := probe(mid)
		if err != nil {
			return err
		}
		if found {
			lo = s
		} else {
			hi = mid
		}
	}
	w.next = lo + 1
	return nil
}

// poll returns every event enqueued since the last poll, oldest first.
func (w *watcher) poll(ctx context.Context) ([]seenEvent, error) {
	var out []seenEvent
	for {
		from := w.next
		msgs, err := w.recv.PeekMessages(ctx, peekPage, &azservicebus.PeekMessagesOptions{FromSequenceNumber: &from})
		if err != nil {
			return out, fmt.Errorf("peeking events: %w", err)
		}
		for _, m := range msgs {
			if m.SequenceNumber == nil {
				continue
			}
			if *m.SequenceNumber >= w.next {
				w.next = *m.SequenceNumber + 1
			}
			out = append(out, toSeen(m))
		}
		// A reply may hold fewer than asked for while more remain (the service caps replies
		// by size), so only an empty reply means the end.
		if len(msgs) == 0 || w.next == from {
			return out, nil
		}
	}
}

func toSeen(m *azservicebus.ReceivedMessage) seenEvent {
	e := seenEvent{SequenceNumber: *m.SequenceNumber, MessageID: m.MessageID}
	if m.EnqueuedTime != nil {
		e.EnqueuedTime = m.EnqueuedTime.UTC()
	}
	if m.Subject != nil {
		e.Subject = *m.Subject
	}
	if err := json.Unmarshal(m.Body, &e.Event); err != nil || e.Event.Type == "" {
		e.unreadable = true
		e.Event = registrar.Event{Type: registrar.EventType(e.Subject)}
	}
	return e
}

// errWaitTimeout is what wait returns when no matching event came in time.
var errWaitTimeout = errors.New("timed out")

// wait polls until an event satisfies match, ctx ends, or the deadline passes. It polls every
// `every` for the first seconds, when most outcomes arrive (a registration takes tens of
// milliseconds), then backs off to a few times a second.
func (w *watcher) wait(ctx context.Context, every time.Duration, deadline time.Time, match func(seenEvent) bool) (seenEvent, error) {
	start := time.Now()
	for {
		evs, err := w.poll(ctx)
		for _, e := range evs {
			if match(e) {
				return e, nil
			}
		}
		if err != nil {
			return seenEvent{}, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return seenEvent{}, errWaitTimeout
		}
		interval := every
		if time.Since(start) > 5*time.Second {
			interval = max(every, 500*time.Millisecond)
		}
		t := time.NewTimer(min(interval, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return seenEvent{}, ctx.Err()
		case <-t.C:
		}
	}
}

// terminal reports whether an event ends a request: registered, rotated, rejected or failed
// ("retired" follows a rotation and is not its outcome).
func terminal(t registrar.EventType) bool {
	switch t {
	case registrar.EventRegistered, registrar.EventRotated, registrar.EventRejected, registrar.EventFailed, registrar.EventDeregistered:
		return true
	}
	return false
}

// outcomeCode is the exit status an outcome event stands for.
func outcomeCode(t registrar.EventType) int {
	switch t {
	case registrar.EventRejected:
		return exitRejected
	case registrar.EventFailed, registrar.EventAccessUnverified:
		return exitFailed
	}
	return exitOK
}
