package servicebus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/go-amqp"

	"appreg/internal/azerr"
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

// Publisher sends the registrar's events, and commands to a client's session on the command queue.
type Publisher struct {
	events   *azservicebus.Sender
	commands *azservicebus.Sender
	log      *slog.Logger
}

var _ registrar.Publisher = (*Publisher)(nil)

// NewPublisher opens senders on the events topic and the command queue of client.
func NewPublisher(client *azservicebus.Client, eventsTopic, commandQueue string, log *slog.Logger) (*Publisher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	events, err := client.NewSender(eventsTopic, nil)
	if err != nil {
		return nil, fmt.Errorf("servicebus: sender for %s: %w", eventsTopic, err)
	}
	commands, err := client.NewSender(commandQueue, nil)
	if err != nil {
		return nil, fmt.Errorf("servicebus: sender for %s: %w", commandQueue, err)
	}
	return &Publisher{events: events, commands: commands, log: log}, nil
}

// Publish sends an outcome event. Subject is the event type, so subscriptions can filter on it
// without parsing bodies.
func (p *Publisher) Publish(ctx context.Context, e registrar.Event) error {
	return p.send(ctx, p.events, "servicebus.publish", message{
		id: e.MessageID(), subject: string(e.Type), body: e,
		props: map[string]any{"type": string(e.Type), "clientName": e.ClientName, "requestId": e.RequestID},
	})
}

// EnqueueRotation sends a rotation job to the client's session.
func (p *Publisher) EnqueueRotation(ctx context.Context, job registrar.RotationJob) error {
	return p.send(ctx, p.commands, "servicebus.enqueueRotation", message{
		id: job.MessageID(), subject: registrar.CommandRotate, session: job.ClientName, body: job,
		props: map[string]any{"clientName": job.ClientName, "reason": job.Reason},
	})
}

// EnqueueMaintenance sends a maintenance job to the client's session.
func (p *Publisher) EnqueueMaintenance(ctx context.Context, job registrar.MaintenanceJob) error {
	return p.send(ctx, p.commands, "servicebus.enqueueMaintenance", message{
		id: job.MessageID(), subject: registrar.CommandMaintain, session: job.ClientName, body: job,
		props: map[string]any{"clientName": job.ClientName},
	})
}

// EnqueueAccessCheck sends a verify-access job to the client's session, delivered at the given
// time: Service Bus holds a scheduled message until then.
func (p *Publisher) EnqueueAccessCheck(ctx context.Context, job registrar.AccessCheckJob, at time.Time) error {
	return p.send(ctx, p.commands, "servicebus.enqueueAccessCheck", message{
		id: job.MessageID(), subject: registrar.CommandVerifyAccess, session: job.ClientName, body: job, at: at,
		props: map[string]any{"clientName": job.ClientName},
	})
}

// Close closes the senders.
func (p *Publisher) Close(ctx context.Context) error {
	return errors.Join(p.events.Close(ctx), p.commands.Close(ctx))
}

// message is what send puts on the wire.
type message struct {
	id, subject, session string
	body                 any
	props                map[string]any
	at                   time.Time // deliver at; zero: now
}

func (p *Publisher) send(ctx context.Context, s *azservicebus.Sender, op string, m message) error {
	b, err := json.Marshal(m.body)
	if err != nil {
		return &registrar.Error{Code: registrar.CodeInternal, Op: op, Message: "encoding the message failed", Err: err}
	}
	contentType := "application/json"
	msg := &azservicebus.Message{
		MessageID:             &m.id,
		Subject:               &m.subject,
		ContentType:           &contentType,
		Body:                  b,
		ApplicationProperties: m.props,
	}
	if m.session != "" {
		msg.SessionID = &m.session
	}
	if !m.at.IsZero() {
		at := m.at.UTC()
		msg.ScheduledEnqueueTime = &at
	}
	start := time.Now()
	if err := s.SendMessage(ctx, msg, nil); err != nil {
		return translate(op, err)
	}
	p.log.Debug("message sent", slog.String("op", op), slog.String("messageId", m.id), slog.Duration("elapsed", time.Since(start)))
	return nil
}

// condArgumentOutOfRange is Service Bus's refusal of an argument outside its limits.
const condArgumentOutOfRange = "com.microsoft:argument-out-of-range"

// amqpDescription is the service's description in an AMQP error, or the error's text, which
// holds it when the SDK does not unwrap.
func amqpDescription(err error) string {
	var e *amqp.Error
	if errors.As(err, &e) && e.Description != "" {
		return e.Description
	}
	msg := err.Error()
	if _, d, ok := strings.Cut(msg, "Description: "); ok {
		msg, _, _ = strings.Cut(d, ", Info:")
	}
	return msg
}

// translate maps azservicebus errors to registrar codes. Everything but an authorisation
// failure or an oversize message is worth retrying: the SDK has already retried the link.
func translate(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &registrar.Error{Code: registrar.CodeUnavailable, Op: op, Message: "timed out", Err: err}
	}
	// A MessageId or SessionId over Service Bus's 128 characters, say: resending the same
	// message cannot succeed. The SDK reports it as a lost connection (after its retries) and
	// does not unwrap to the AMQP error, so its condition is read from the text: a code, not a
	// message.
	if strings.Contains(err.Error(), condArgumentOutOfRange) {
		return &registrar.Error{Code: registrar.CodeInvalid, Op: op, Message: "Service Bus refused the message: " + azerr.Clip(amqpDescription(err)), Err: err}
	}
	var sbErr *azservicebus.Error
	if errors.As(err, &sbErr) {
		switch sbErr.Code {
		case azservicebus.CodeUnauthorizedAccess:
			// Service Bus names the claim it wanted and the entity; no secret is in it.
			return &registrar.Error{Code: registrar.CodeForbidden, Op: op, Err: err, Message: "Service Bus refused the identity: sending needs Azure Service Bus Data Sender, " +
				"receiving and peeking Data Receiver, on the entity (a new role assignment takes up to 10 minutes to apply): " + azerr.Clip(amqpDescription(err))}
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
