package servicebus

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"appreg/emulator/servicebusemu"
	"appreg/internal/registrar"
)

func start(tb testing.TB) (*servicebusemu.Server, *azservicebus.Client) {
	tb.Helper()
	srv, err := servicebusemu.NewServer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = srv.Close() })
	client, err := NewClient(Connection{ConnectionString: srv.ConnectionString()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = client.Close(context.Background()) })
	return srv, client
}

func TestPublisherSendsEventsAndJobs(t *testing.T) {
	_, client := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pub, err := NewPublisher(client, "app-registration-events", "app-commands", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(ctx)

	ev := registrar.Event{Type: registrar.EventRegistered, RequestID: "req-1", ClientName: "lab", AppID: "a", KeyID: "k", OccurredAt: time.Now().UTC()}
	if err := pub.Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	job := registrar.RotationJob{ClientName: "lab", AppID: "11111111-1111-4111-8111-111111111111", KeyID: "22222222-2222-4222-8222-222222222222", Reason: registrar.ReasonNearExpiry}
	if err := pub.EnqueueRotation(ctx, job); err != nil {
		t.Fatal(err)
	}

	events, err := client.NewReceiverForSubscription("app-registration-events", "appreg", nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := events.ReceiveMessages(ctx, 1, nil)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("events: %v %v", msgs, err)
	}
	m := msgs[0]
	var got registrar.Event
	if err := json.Unmarshal(m.Body, &got); err != nil {
		t.Fatal(err)
	}
	if m.MessageID != "req-1:registered" || *m.Subject != "registered" || *m.ContentType != "application/json" ||
		got.AppID != "a" || m.ApplicationProperties["clientName"] != "lab" || m.ApplicationProperties["type"] != "registered" {
		t.Errorf("event message = id %q subject %q props %v body %s", m.MessageID, *m.Subject, m.ApplicationProperties, m.Body)
	}

	// Jobs go to the client's session: the one receiver that holds it runs them in order.
	jobs, err := client.AcceptNextSessionForQueue(ctx, "app-commands", nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err = jobs.ReceiveMessages(ctx, 1, nil)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("jobs: %v %v", msgs, err)
	}
	if msgs[0].MessageID != job.MessageID() || *msgs[0].SessionID != "lab" || *msgs[0].Subject != registrar.CommandRotate {
		t.Errorf("job message id %q session %v subject %v", msgs[0].MessageID, msgs[0].SessionID, msgs[0].Subject)
	}
	parsed, reasons := registrar.ParseRotationJob(msgs[0].Body)
	if len(reasons) > 0 || parsed.KeyID != job.KeyID {
		t.Errorf("job body does not round-trip: %+v %v", parsed, reasons)
	}
}

func TestDuplicateJobsCollapse(t *testing.T) {
	srv, client := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pub, err := NewPublisher(client, "app-registration-events", "app-commands", nil)
	if err != nil {
		t.Fatal(err)
	}
	job := registrar.RotationJob{ClientName: "lab", AppID: "11111111-1111-4111-8111-111111111111", KeyID: "22222222-2222-4222-8222-222222222222", Reason: registrar.ReasonNearExpiry}
	for range 3 {
		if err := pub.EnqueueRotation(ctx, job); err != nil {
			t.Fatal(err)
		}
	}
	st, err := srv.Counts("app-commands")
	if err != nil {
		t.Fatal(err)
	}
	if st.Active != 1 {
		t.Errorf("active jobs = %d, want 1: two scheduler runs must not rotate a secret twice", st.Active)
	}
}

// The scheduler reads dead letters without taking them: they stay for `appreg dlq`.
func TestDeadLettersArePeekedNotTaken(t *testing.T) {
	_, client := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pub, err := NewPublisher(client, "app-registration-events", "app-commands", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(ctx)
	job := registrar.MaintenanceJob{ClientName: "lab", AppID: "11111111-1111-4111-8111-111111111111", Fingerprint: "f"}
	if err := pub.EnqueueMaintenance(ctx, job); err != nil {
		t.Fatal(err)
	}
	r, err := client.AcceptNextSessionForQueue(ctx, "app-commands", nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := r.ReceiveMessages(ctx, 1, nil)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%v %v", msgs, err)
	}
	reason, desc := "MaxDeliveryCountExceeded", "gave up"
	if err := r.DeadLetterMessage(ctx, msgs[0], &azservicebus.DeadLetterOptions{Reason: &reason, ErrorDescription: &desc}); err != nil {
		t.Fatal(err)
	}
	dls := NewDeadLetters(client, "app-commands")
	for range 2 { // twice: the first peek took nothing
		var got []registrar.DeadLetter
		if err := dls.PeekDeadLetters(ctx, func(d registrar.DeadLetter) error { got = append(got, d); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].MessageID != job.MessageID() || got[0].SessionID != "lab" || got[0].Subject != registrar.CommandMaintain ||
			got[0].Reason != reason || got[0].Description != desc || got[0].EnqueuedTime.IsZero() {
			t.Fatalf("dead letters = %+v", got)
		}
	}
}

func TestTranslate(t *testing.T) {
	tests := []struct {
		err  error
		code registrar.Code
	}{
		{&azservicebus.Error{Code: azservicebus.CodeUnauthorizedAccess}, registrar.CodeForbidden},
		{&azservicebus.Error{Code: azservicebus.CodeConnectionLost}, registrar.CodeUnavailable},
		{&azservicebus.Error{Code: azservicebus.CodeNotFound}, registrar.CodeUnavailable},
		{azservicebus.ErrMessageTooLarge, registrar.CodeInvalid},
		{context.DeadlineExceeded, registrar.CodeUnavailable},
		{errors.New("eof"), registrar.CodeUnavailable},
	}
	for _, tt := range tests {
		if got := registrar.ErrorCode(translate("op", tt.err)); got != tt.code {
			t.Errorf("translate(%v) = %s, want %s", tt.err, got, tt.code)
		}
	}
}

func TestNewClientNeverEchoesTheConnectionString(t *testing.T) {
	_, err := NewClient(Connection{ConnectionString: "Endpoint=nonsense;SharedAccessKey=sup3rsecret"})
	if err == nil || strings.Contains(err.Error(), "sup3rsecret") {
		t.Errorf("err = %v", err)
	}
	if _, err := NewClient(Connection{Namespace: "ns.servicebus.windows.net"}); err == nil {
		t.Error("an identity-based connection without a credential was accepted")
	}
}
