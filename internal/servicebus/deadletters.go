package servicebus

import (
	"context"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"appreg/internal/registrar"
)

// DeadLetters reads a queue's dead-letter queue by peeking: nothing is taken off it, so the
// messages stay for `appreg dlq` to show and resubmit.
type DeadLetters struct {
	client *azservicebus.Client
	queue  string
}

var _ registrar.DeadLetters = (*DeadLetters)(nil)

// NewDeadLetters reads the dead-letter queue of queue.
func NewDeadLetters(client *azservicebus.Client, queue string) *DeadLetters {
	return &DeadLetters{client: client, queue: queue}
}

// peekPage is how many messages one peek asks for; the service caps a reply anyway.
const peekPage = 250

// PeekDeadLetters calls fn for every dead-lettered message, oldest first. The receiver is opened
// per call: the scheduler reads the queue every few hours, and a link held open between runs
// would only be detached by the service when idle.
func (d *DeadLetters) PeekDeadLetters(ctx context.Context, fn func(registrar.DeadLetter) error) error {
	const op = "servicebus.peekDeadLetters"
	r, err := d.client.NewReceiverForQueue(d.queue, &azservicebus.ReceiverOptions{SubQueue: azservicebus.SubQueueDeadLetter})
	if err != nil {
		return &registrar.Error{Code: registrar.CodeInternal, Op: op, Message: fmt.Sprintf("receiver for %s's dead-letter queue: %v", d.queue, err), Err: err}
	}
	defer r.Close(context.WithoutCancel(ctx))
	var next int64
	for {
		from := next
		msgs, err := r.PeekMessages(ctx, peekPage, &azservicebus.PeekMessagesOptions{FromSequenceNumber: &from})
		if err != nil {
			return translate(op, err)
		}
		for _, m := range msgs {
			if m.SequenceNumber != nil && *m.SequenceNumber >= next {
				next = *m.SequenceNumber + 1
			}
			dl := registrar.DeadLetter{MessageID: m.MessageID, Body: m.Body}
			if m.Subject != nil {
				dl.Subject = *m.Subject
			}
			if m.SessionID != nil {
				dl.SessionID = *m.SessionID
			}
			if m.EnqueuedTime != nil {
				dl.EnqueuedTime = *m.EnqueuedTime
			}
			if m.DeadLetterReason != nil {
				dl.Reason = *m.DeadLetterReason
			}
			if m.DeadLetterErrorDescription != nil {
				dl.Description = *m.DeadLetterErrorDescription
			}
			if err := fn(dl); err != nil {
				return err
			}
		}
		// A reply may hold fewer than asked for while more remain (the service caps replies by
		// size), so only an empty reply, or one that did not advance, means the end.
		if len(msgs) == 0 || next == from {
			return nil
		}
	}
}
