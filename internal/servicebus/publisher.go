package servicebus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"appreg/internal/registrar"
)

// Connection says how to reach a namespace: an identity-based namespace name (Azure) or a
// connection string (the emulator, or a namespace with SAS keys).
type Connection struct {
	Namespace        string // <ns>.servicebus.windows.net
	ConnectionString string
	Credential       azcore.TokenCredential // required with Namespace
}

// NewClient builds the azservicebus client for c. Build it once per process and reuse it: a
// client owns one AMQP connection that every sender and receiver shares.
func NewClient(c Connection) (*azservicebus.Client, error) {
	switch {
	case c.ConnectionString != "":
		client, err := azservicebus.NewClientFromConnectionString(c.ConnectionString, nil)
		if err != nil {
			// The SDK's message may quote the string; never pass it on.
			return nil, errors.New("servicebus: the connection string is not valid")
		}
		return client, nil
	case c.Namespace != "":
		if c.Credential == nil {
			return nil, errors.New("servicebus: an identity-based connection needs a credential")
		}
		return azservicebus.NewClient(c.Namespace, c.Credential, nil)
	}
	return nil, errors.New("servicebus: no namespace or connection string")
}

// Publisher sends the registrar's events and rotation jobs.
type Publisher struct {
	events *azservicebus.Sender
	jobs   *azservicebus.Sender
	log    *slog.Logger
}

var _ registrar.Publisher = (*Publisher)(nil)

// NewPublisher opens senders on the events topic and the rotation queue of client.
func NewPublisher(client *azservicebus.Client, eventsTopic, rotationQueue string, log *slog.Logger) (*Publisher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	events, err := client.NewSender(eventsTopic, nil)
	if err != nil {
		return nil, fmt.Errorf("servicebus: sender for %s: %w", eventsTopic, err)
	}
	jobs, err := client.NewSender(rotationQueue, nil)
	if err != nil {
		return nil, fmt.Errorf("servicebus: sender for %s: %w", rotationQueue, err)
	}
	return &Publisher{events: events, jobs: jobs, log: log}, nil
}

// Publish sends an outcome event. Subject is the event type, so subscriptions can filter on it
// without parsing bodies.
func (p *Publisher) Publish(ctx context.Context, e registrar.Event) error {
	return p.send(ctx, p.events, "servicebus.publish", e.MessageID(), string(e.Type), e, map[string]any{
		"type": string(e.Type), "clientName": e.ClientName, "requestId": e.RequestID,
	})
}

// EnqueueRotation sends a rotation job.
func (p *Publisher) EnqueueRotation(ctx context.Context, job registrar.RotationJob) error {
	return p.send(ctx, p.jobs, "servicebus.enqueueRotation", job.MessageID(), "rotate", job, map[string]any{
		"clientName": job.ClientName, "reason": job.Reason,
	})
}

// Close closes the senders.
func (p *Publisher) Close(ctx context.Context) error {
	return errors.Join(p.events.Close(ctx), p.jobs.Close(ctx))
}

func (p *Publisher) send(ctx context.Context, s *azservicebus.Sender, op, messageID, subject string, body any, props map[string]any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return &registrar.Error{Code: registrar.CodeInternal, Op: op, Message: "encoding the message failed", Err: err}
	}
	contentType := "application/json"
	start := time.Now()
	err = s.SendMessage(ctx, &azservicebus.Message{
		MessageID:             &messageID,
		Subject:               &subject,
		ContentType:           &contentType,
		Body:                  b,
		ApplicationProperties: props,
	}, nil)
	if err != nil {
		return translate(op, err)
	}
	p.log.Debug("message sent", slog.String("op", op), slog.String("messageId", messageID), slog.Duration("elapsed", time.Since(start)))
	return nil
}

// translate maps azservicebus errors to registrar codes. Everything but an authorisation
// failure or an oversize message is worth retrying: the SDK has already retried the link.
func translate(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &registrar.Error{Code: registrar.CodeUnavailable, Op: op, Message: "timed out", Err: err}
	}
	var sbErr *azservicebus.Error
	if errors.As(err, &sbErr) {
		switch sbErr.Code {
		case azservicebus.CodeUnauthorizedAccess:
			return &registrar.Error{Code: registrar.CodeForbidden, Op: op, Message: "not authorised to send", Err: err}
		case azservicebus.CodeNotFound:
			return &registrar.Error{Code: registrar.CodeUnavailable, Op: op, Message: "entity not found", Err: err}
		}
		return &registrar.Error{Code: registrar.CodeUnavailable, Op: op, Message: string(sbErr.Code), Err: err}
	}
	if errors.Is(err, azservicebus.ErrMessageTooLarge) {
		return &registrar.Error{Code: registrar.CodeInvalid, Op: op, Message: "message too large", Err: err}
	}
	return &registrar.Error{Code: registrar.CodeUnavailable, Op: op, Message: "send failed", Err: err}
}
