package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"appreg/internal/registrar"
)

// sendRaw puts a request on the queue the way any other tool following the README would, without
// the CLI's checks: SessionId is the body's clientName, Subject register.
func sendRaw(t *testing.T, s *stack, messageID, body string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, err := azservicebus.NewClientFromConnectionString(s.emu.Endpoints().ServiceBusConnectionString, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(ctx)
	sender, err := client.NewSender("app-commands", nil)
	if err != nil {
		t.Fatal(err)
	}
	var req struct{ ClientName string }
	_ = json.Unmarshal([]byte(body), &req)
	if err := sender.SendMessage(ctx, &azservicebus.Message{MessageID: &messageID, ContentType: to.Ptr("application/json"), Body: []byte(body),
		SessionID: to.Ptr(req.ClientName), Subject: to.Ptr("register")}, nil); err != nil {
		t.Fatal(err)
	}
}

// waitEvent peeks the events subscription (never consuming, so the CLI's waiters see everything)
// until an event for requestID arrives.
func waitEvent(t *testing.T, s *stack, requestID string) registrar.Event {
	t.Helper()
	return waitEventType(t, s, requestID, "")
}

func waitEventType(t *testing.T, s *stack, requestID string, typ registrar.EventType) registrar.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	client, err := azservicebus.NewClientFromConnectionString(s.emu.Endpoints().ServiceBusConnectionString, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(context.Background())
	r, err := client.NewReceiverForSubscription("app-registration-events", "appreg", nil)
	if err != nil {
		t.Fatal(err)
	}
	var from int64
	for {
		msgs, err := r.PeekMessages(ctx, 100, &azservicebus.PeekMessagesOptions{FromSequenceNumber: &from})
		if err != nil {
			t.Fatalf("waiting for %s %s: %v", requestID, typ, err)
		}
		for _, m := range msgs {
			from = *m.SequenceNumber + 1
			var e registrar.Event
			if json.Unmarshal(m.Body, &e) == nil && e.RequestID == requestID && (typ == "" || e.Type == typ) {
				return e
			}
		}
		if len(msgs) == 0 {
			select {
			case <-ctx.Done():
				t.Fatalf("no %q event for %s", typ, requestID)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}
