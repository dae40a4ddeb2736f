package servicebus

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

// ProbeSend attaches a sender to an entity without sending anything: the attach is where Service
// Bus refuses a missing entity or a missing Send right. For the preflight check.
func ProbeSend(ctx context.Context, client *azservicebus.Client, entity string) error {
	const op = "servicebus.probeSend"
	s, err := client.NewSender(entity, nil)
	if err != nil {
		return translate(op, err)
	}
	defer s.Close(context.WithoutCancel(ctx))
	if _, err := s.NewMessageBatch(ctx, nil); err != nil {
		return translate(op, err)
	}
	return nil
}

// ProbeReceive peeks one message of a queue's dead-letter queue, which needs the Listen right on
// the queue and an existing queue, and takes nothing off it. The dead-letter queue, because a
// session-enabled queue only serves session receivers, and accepting a session would take it
// from the host for as long as the probe held it. For the preflight check.
func ProbeReceive(ctx context.Context, client *azservicebus.Client, queue string) error {
	const op = "servicebus.probeReceive"
	r, err := client.NewReceiverForQueue(queue, &azservicebus.ReceiverOptions{SubQueue: azservicebus.SubQueueDeadLetter})
	if err != nil {
		return translate(op, err)
	}
	defer r.Close(context.WithoutCancel(ctx))
	if _, err := r.PeekMessages(ctx, 1, nil); err != nil {
		return translate(op, err)
	}
	return nil
}
