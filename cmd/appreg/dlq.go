package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

const dlqAbout = `
Works the dead-letter queue of COMMAND_QUEUE, where registrations, rotations and maintenance jobs
land after their retries ran out (reason MaxDeliveryCountExceeded, once RETRY_BUDGET is spent).
Each has a "failed" event: from its last delivery, or, if that was cut off, from the next
ScheduleRotations run.

  list              sequence number, message id, enqueued time, delivery count, reason, description
  show <seq>        one message in full, body included (requests and jobs hold no secrets)
  resubmit <seq>    send a copy to the live queue, then remove it from the dead-letter queue;
  resubmit --all    the copy gets a new MessageId (<id>:resubmit:<unix time>), because duplicate
                    detection would drop a resend of the same id; body, session and properties
                    are kept, and its outcome event gets ids of its own
  purge <seq>       remove messages from the dead-letter queue for good
  purge --all

Messages are sent before they are removed, so a failure in between leaves a duplicate (which the
handler's idempotence absorbs), never a loss. Selecting one message receives and locks the
others ahead of it for a moment; they are abandoned unchanged, which counts a delivery.`

// dlqMessage is a dead-lettered message as list and show print it.
type dlqMessage struct {
	SequenceNumber int64          `json:"sequenceNumber"`
	MessageID      string         `json:"messageId"`
	EnqueuedTime   time.Time      `json:"enqueuedTime"`
	DeliveryCount  uint32         `json:"deliveryCount"`
	Reason         string         `json:"deadLetterReason"`
	Description    string         `json:"deadLetterErrorDescription"`
	Source         string         `json:"deadLetterSource,omitempty"`
	Subject        string         `json:"subject,omitempty"`
	ContentType    string         `json:"contentType,omitempty"`
	Properties     map[string]any `json:"applicationProperties,omitempty"`
	Body           *jsonOrText    `json:"body,omitempty"`
}

// jsonOrText marshals a body as JSON when it is JSON, and as a string otherwise.
type jsonOrText []byte

func (b jsonOrText) MarshalJSON() ([]byte, error) {
	if json.Valid(b) {
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err == nil {
			return buf.Bytes(), nil
		}
	}
	return json.Marshal(string(b))
}

// deadLetterProperties are the application properties Service Bus adds when it dead-letters a
// message. They describe the dead-lettering, not the message: shown as such, and not copied
// onto a resubmitted message.
var deadLetterProperties = []string{"DeadLetterReason", "DeadLetterErrorDescription"}

func ownProperties(props map[string]any) map[string]any {
	out := make(map[string]any, len(props))
	for k, v := range props {
		if !slices.Contains(deadLetterProperties, k) {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func toDLQ(m *azservicebus.ReceivedMessage, withBody bool) dlqMessage {
	d := dlqMessage{MessageID: m.MessageID, DeliveryCount: m.DeliveryCount, Properties: ownProperties(m.ApplicationProperties)}
	if m.SequenceNumber != nil {
		d.SequenceNumber = *m.SequenceNumber
	}
	if m.EnqueuedTime != nil {
		d.EnqueuedTime = m.EnqueuedTime.UTC()
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	d.Reason, d.Description, d.Source = str(m.DeadLetterReason), str(m.DeadLetterErrorDescription), str(m.DeadLetterSource)
	d.Subject, d.ContentType = str(m.Subject), str(m.ContentType)
	if withBody {
		b := jsonOrText(m.Body)
		d.Body = &b
	}
	return d
}

func (c *cli) dlq(ctx context.Context, args []string) error {
	f := c.flagSet("dlq", "dlq list|show <seq>|resubmit (<seq>|--all)|purge (<seq>|--all)", dlqAbout)
	var cf connFlags
	all := f.Bool("all", false, "resubmit or purge every message in the dead-letter queue")
	f.connection(&cf)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErrorf("missing action: list, show, resubmit or purge")
	}
	action, rest := pos[0], pos[1:]
	var seq int64
	switch action {
	case "list":
		if len(rest) > 0 || *all {
			return usageErrorf("list takes no arguments")
		}
	case "show", "resubmit", "purge":
		switch {
		case action != "show" && *all && len(rest) == 0:
		case len(rest) == 1 && !*all:
			n, err := strconv.ParseInt(rest[0], 10, 64)
			if err != nil || n < 0 {
				return usageErrorf("%s: %q is not a sequence number", action, rest[0])
			}
			seq = n
		case action == "show":
			return usageErrorf("show takes one sequence number")
		default:
			return usageErrorf("%s takes one sequence number or --all", action)
		}
	default:
		return usageErrorf("unknown action %q: want list, show, resubmit or purge", action)
	}
	b, err := c.open(cf)
	if err != nil {
		return err
	}
	defer b.close()
	entity := b.cfg.CommandQueue
	recv, err := b.client.NewReceiverForQueue(entity, &azservicebus.ReceiverOptions{
		ReceiveMode: azservicebus.ReceiveModePeekLock, SubQueue: azservicebus.SubQueueDeadLetter,
	})
	if err != nil {
		return fmt.Errorf("receiver for %s/$deadletterqueue: %w", entity, err)
	}
	defer recv.Close(context.WithoutCancel(ctx))
	d := &dlqRun{c: c, b: b, recv: recv, entity: entity, json: cf.json}
	switch action {
	case "list":
		return d.list(ctx)
	case "show":
		return d.show(ctx, seq)
	default:
		return d.settle(ctx, action, seq, *all)
	}
}

type dlqRun struct {
	c      *cli
	b      *bus
	recv   *azservicebus.Receiver
	entity string
	json   bool
}

// peekAll browses the whole dead-letter queue.
func (d *dlqRun) peekAll(ctx context.Context) ([]*azservicebus.ReceivedMessage, error) {
	var out []*azservicebus.ReceivedMessage
	var from int64
	for {
		msgs, err := d.recv.PeekMessages(ctx, peekPage, &azservicebus.PeekMessagesOptions{FromSequenceNumber: &from})
		if err != nil {
			return nil, fmt.Errorf("peeking %s/$deadletterqueue: %w", d.entity, err)
		}
		next := from
		for _, m := range msgs {
			if m.SequenceNumber != nil && *m.SequenceNumber >= next {
				next = *m.SequenceNumber + 1
				out = append(out, m)
			}
		}
		if len(msgs) == 0 || next == from {
			return out, nil
		}
		from = next
	}
}

func (d *dlqRun) list(ctx context.Context) error {
	msgs, err := d.peekAll(ctx)
	if err != nil {
		return err
	}
	rows := make([]dlqMessage, 0, len(msgs))
	for _, m := range msgs {
		rows = append(rows, toDLQ(m, false))
	}
	if d.json {
		writeJSON(d.c.stdout, rows)
		return nil
	}
	if len(rows) == 0 {
		fmt.Fprintf(d.c.stdout, "the dead-letter queue of %s is empty\n", d.entity)
		return nil
	}
	tw := tabwriter.NewWriter(d.c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tMESSAGE ID\tENQUEUED\tDELIVERIES\tREASON\tDESCRIPTION")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", r.SequenceNumber, r.MessageID, r.EnqueuedTime.Format(time.RFC3339),
			r.DeliveryCount, r.Reason, oneLine(r.Description))
	}
	return tw.Flush()
}

func (d *dlqRun) show(ctx context.Context, seq int64) error {
	msgs, err := d.recv.PeekMessages(ctx, 1, &azservicebus.PeekMessagesOptions{FromSequenceNumber: &seq})
	if err != nil {
		return fmt.Errorf("peeking %s/$deadletterqueue: %w", d.entity, err)
	}
	if len(msgs) == 0 || msgs[0].SequenceNumber == nil || *msgs[0].SequenceNumber != seq {
		return usageErrorf("no message with sequence number %d in the dead-letter queue of %s", seq, d.entity)
	}
	m := toDLQ(msgs[0], true)
	if d.json {
		writeJSON(d.c.stdout, m)
		return nil
	}
	w := d.c.stdout
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-28s %s\n", k, v)
		}
	}
	row("sequenceNumber", strconv.FormatInt(m.SequenceNumber, 10))
	row("messageId", m.MessageID)
	row("enqueuedTime", m.EnqueuedTime.Format(time.RFC3339))
	row("deliveryCount", strconv.FormatUint(uint64(m.DeliveryCount), 10))
	row("deadLetterReason", m.Reason)
	row("deadLetterErrorDescription", m.Description)
	row("deadLetterSource", m.Source)
	row("subject", m.Subject)
	row("contentType", m.ContentType)
	for _, k := range slices.Sorted(maps.Keys(m.Properties)) {
		row("property "+k, fmt.Sprint(m.Properties[k]))
	}
	fmt.Fprintln(w, "body:")
	var pretty bytes.Buffer
	if json.Indent(&pretty, msgs[0].Body, "  ", "  ") == nil {
		fmt.Fprintf(w, "  %s\n", pretty.String())
	} else {
		fmt.Fprintf(w, "  %q\n", msgs[0].Body)
	}
	return nil
}

// settle resubmits or purges the messages selected by seq or all. The selection is fixed by a
// peek first, so messages dead-lettered while it runs are left for the next run.
func (d *dlqRun) settle(ctx context.Context, action string, seq int64, all bool) error {
	want := map[int64]bool{}
	if all {
		msgs, err := d.peekAll(ctx)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			want[*m.SequenceNumber] = true
		}
		if len(want) == 0 {
			d.say("the dead-letter queue of %s is empty\n", d.entity)
			if d.json {
				writeJSON(d.c.stdout, []any{})
			}
			return nil
		}
	} else {
		want[seq] = true
	}

	type result struct {
		SequenceNumber int64  `json:"sequenceNumber"`
		MessageID      string `json:"messageId"`
		NewMessageID   string `json:"newMessageId,omitempty"`
		Action         string `json:"action"`
	}
	var results []result
	var sender *azservicebus.Sender
	if action == "resubmit" {
		var err error
		if sender, err = d.b.client.NewSender(d.entity, nil); err != nil {
			return fmt.Errorf("sender for %s: %w", d.entity, err)
		}
		defer sender.Close(context.WithoutCancel(ctx))
	}
	// Messages received but not selected stay locked until the end, so each receive makes
	// progress; then they are abandoned, unchanged.
	var held []*azservicebus.ReceivedMessage
	defer func() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for _, m := range held {
			_ = d.recv.AbandonMessage(actx, m, nil) // if it fails, the lock simply runs out
		}
	}()
	var failure error
	for len(want) > 0 && failure == nil {
		// Ask for no more than is still wanted: credit left on the link when the loop ends
		// would pull the abandoned messages straight back to this receiver, locked, as it
		// closes.
		rctx, cancel := context.WithTimeout(ctx, d.c.idle)
		msgs, err := d.recv.ReceiveMessages(rctx, min(50, len(want)), nil)
		cancel()
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("receiving from %s/$deadletterqueue: %w", d.entity, err)
		}
		if len(msgs) == 0 {
			break // the rest are gone, or locked by someone else
		}
		for _, m := range msgs {
			if m.SequenceNumber == nil || !want[*m.SequenceNumber] || failure != nil {
				held = append(held, m)
				continue
			}
			delete(want, *m.SequenceNumber)
			r := result{SequenceNumber: *m.SequenceNumber, MessageID: m.MessageID, Action: action}
			if action == "resubmit" {
				r.NewMessageID = resubmitID(m.MessageID, d.c.now())
				if err := sender.SendMessage(ctx, resubmitCopy(m, r.NewMessageID), nil); err != nil {
					held = append(held, m)
					failure = fmt.Errorf("resubmitting sequence number %d: %w (it stays in the dead-letter queue)", r.SequenceNumber, err)
					continue
				}
			}
			if err := d.recv.CompleteMessage(ctx, m, nil); err != nil {
				if action == "resubmit" {
					failure = fmt.Errorf("sequence number %d was resubmitted as %s but could not be removed from the dead-letter queue: %w; purge it once the copy is processed", r.SequenceNumber, r.NewMessageID, err)
				} else {
					failure = fmt.Errorf("purging sequence number %d: %w", r.SequenceNumber, err)
				}
				continue
			}
			results = append(results, r)
			if action == "resubmit" {
				d.say("resubmitted %d (%s) to %s as %s\n", r.SequenceNumber, r.MessageID, d.entity, r.NewMessageID)
			} else {
				d.say("purged %d (%s)\n", r.SequenceNumber, r.MessageID)
			}
		}
	}
	if d.json {
		if results == nil {
			results = []result{}
		}
		writeJSON(d.c.stdout, results)
	}
	if failure != nil {
		return failure
	}
	if len(want) > 0 {
		missing := slices.Sorted(maps.Keys(want))
		if !all {
			return usageErrorf("no message with sequence number %d in the dead-letter queue of %s", missing[0], d.entity)
		}
		return fmt.Errorf("%d message(s) could not be received (locked by another receiver?): %v", len(missing), missing)
	}
	if action == "resubmit" && !d.json {
		fmt.Fprintf(d.c.stderr, "follow the outcome with: %s events --follow\n", d.c.prog)
	}
	return nil
}

func (d *dlqRun) say(format string, args ...any) {
	if !d.json {
		fmt.Fprintf(d.c.stdout, format, args...)
	}
}

var resubmitSuffix = regexp.MustCompile(`:resubmit:\d+$`)

// resubmitID is the MessageId of a resubmitted copy: the original id (without an earlier
// resubmit suffix) plus the time, within Service Bus's 128-character limit.
func resubmitID(orig string, now time.Time) string {
	base := resubmitSuffix.ReplaceAllString(orig, "")
	suffix := ":resubmit:" + strconv.FormatInt(now.Unix(), 10)
	if len(base)+len(suffix) > 128 {
		base = base[:128-len(suffix)]
	}
	return base + suffix
}

// resubmitCopy is the message to send again: the same body, content type, subject, session,
// correlation and application properties (less the dead-letter ones), under a new MessageId.
func resubmitCopy(m *azservicebus.ReceivedMessage, id string) *azservicebus.Message {
	return &azservicebus.Message{
		MessageID:             &id,
		Body:                  m.Body,
		ContentType:           m.ContentType,
		Subject:               m.Subject,
		SessionID:             m.SessionID,
		CorrelationID:         m.CorrelationID,
		ReplyTo:               m.ReplyTo,
		To:                    m.To,
		ApplicationProperties: ownProperties(m.ApplicationProperties),
	}
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}
