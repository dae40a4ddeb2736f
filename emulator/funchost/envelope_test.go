package funchost

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/go-amqp"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current output")

// golden renders a recorded request as the golden JSON text: the request
// line, the headers the host sets, and the body with its key order kept.
// Ids that change on every run are checked, then replaced by placeholders.
func golden(tb testing.TB, rec recorded, inv Invocation) []byte {
	tb.Helper()
	id := rec.Header.Get("X-Azure-Functions-InvocationId")
	if id != inv.InvocationID {
		tb.Errorf("X-Azure-Functions-InvocationId %q, but the invocation reported %q", id, inv.InvocationID)
	}
	if _, err := uuid.Parse(id); err != nil {
		tb.Errorf("invocation id %q: %v", id, err)
	}
	var parsed struct {
		Metadata struct {
			Sys struct{ RandGuid string } `json:"sys"`
		}
	}
	if err := json.Unmarshal(rec.Body, &parsed); err != nil {
		tb.Fatalf("body is not JSON: %v\n%s", err, rec.Body)
	}
	guid := parsed.Metadata.Sys.RandGuid
	if _, err := uuid.Parse(guid); err != nil {
		tb.Errorf("sys.RandGuid %q: %v", guid, err)
	}
	body := bytes.ReplaceAll(rec.Body, []byte(guid), []byte("<rand-guid>"))
	doc := object{
		{"method", rec.Method},
		{"path", rec.Path},
		{"headers", object{
			{"Content-Type", rec.Header.Get("Content-Type")},
			{"User-Agent", rec.Header.Get("User-Agent")},
			{"X-Azure-Functions-HostVersion", rec.Header.Get("X-Azure-Functions-HostVersion")},
			{"X-Azure-Functions-InvocationId", "<invocation-id>"},
		}},
		{"body", json.RawMessage(body)},
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

func checkGolden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		tb.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

func TestServiceBusPayloadGolden(t *testing.T) {
	ta, settings := newTestApp(t, appSpec{
		functions: map[string]string{
			"RegisterApp": sbFunction,
			"RawEvents": `{"bindings": [{"name": "event", "type": "serviceBusTrigger", "direction": "in",
				"topicName": "app-registration-events", "subscriptionName": "raw",
				"connection": "ServiceBusConnection", "dataType": "binary"}]}`,
		},
		settings: baseSettings(),
	})
	app, err := Load(ta.dir, settings)
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock(time.Date(2026, 3, 4, 5, 6, 7, 890123400, time.UTC))
	fakes := map[string]*fakeReceiver{"RegisterApp": newFakeReceiver(clock), "RawEvents": newFakeReceiver(clock)}
	opts, _ := fastOptions(t)
	opts.Clock = clock
	opts.NewReceiver = func(_ context.Context, fn *Function) (Receiver, error) { return fakes[fn.Name], nil }
	got := make(invocations, 10)
	opts.OnInvocation = func(inv Invocation) { got <- inv }
	startHost(t, app, opts)

	enqueued := time.Date(2026, 3, 4, 5, 6, 1, 987654321, time.UTC)
	expires := enqueued.Add(14 * 24 * time.Hour)
	at := time.Date(2026, 3, 4, 5, 0, 0, 500000000, time.UTC)
	tests := []struct {
		name     string
		function string
		msg      *azservicebus.ReceivedMessage
	}{
		{"servicebus-full", "RegisterApp", &azservicebus.ReceivedMessage{
			MessageID:        "7d0c4c1e-5d2a-4d55-9b0e-0f3c2f1d9a10",
			Body:             []byte(`{"requestId":"7d0c4c1e-5d2a-4d55-9b0e-0f3c2f1d9a10","clientName":"lab-results-sync","notes":"<b>R&D</b> \"owner\": Zoë"}`),
			ContentType:      ptr("application/json"),
			CorrelationID:    ptr("corr-1"),
			Subject:          ptr("register"),
			To:               ptr("appreg"),
			ReplyTo:          ptr("app-registration-events"),
			ReplyToSessionID: ptr("reply-session"),
			PartitionKey:     ptr("pk-1"),
			DeadLetterSource: ptr("app-registrations"),
			DeliveryCount:    3,
			SequenceNumber:   ptr(int64(42)),
			EnqueuedTime:     &enqueued,
			ExpiresAt:        &expires,
			LockToken:        uuid.MustParse("6f4e3c2a-1b0d-4e5f-8a7b-9c8d7e6f5a4b"),
			ApplicationProperties: map[string]any{
				"requestedBy": "alice@example.org", "attempt": int64(2), "urgent": true,
				"ratio": 0.5, "at": at, "trace": amqp.UUID(uuid.MustParse("00112233-4455-6677-8899-aabbccddeeff")),
			},
		}},
		{"servicebus-minimal", "RegisterApp", &azservicebus.ReceivedMessage{
			MessageID:      "m-1",
			Body:           []byte("plain text, not JSON"),
			DeliveryCount:  1,
			SequenceNumber: ptr(int64(1)),
			EnqueuedTime:   &enqueued, // no TimeToLive: it never expires
			LockToken:      uuid.MustParse("00000000-0000-0000-0000-000000000001"),
		}},
		{"servicebus-binary", "RawEvents", &azservicebus.ReceivedMessage{
			MessageID:      "bin-1",
			Body:           []byte{0x00, 0xff, 'h', 'i', '\n'},
			ContentType:    ptr("application/octet-stream"),
			DeliveryCount:  1,
			SequenceNumber: ptr(int64(9)),
			EnqueuedTime:   &enqueued,
			ExpiresAt:      &expires,
			LockToken:      uuid.MustParse("00000000-0000-0000-0000-000000000002"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fakes[tt.function].send(tt.msg)
			rec := ta.nextRequest(t)
			inv := got.next(t)
			if inv.Outcome != Completed {
				t.Fatalf("outcome %s: %v", inv.Outcome, inv.Err)
			}
			checkGolden(t, tt.name, golden(t, rec, inv))
		})
	}
}

// TestDoubleEncoding decodes the golden body the way a handler must, to show
// that each string comes out of two JSON decodings intact.
func TestDoubleEncoding(t *testing.T) {
	body := []byte(`{"a":1,"s":"<x> & \"y\""}`)
	enq := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	msg := &azservicebus.ReceivedMessage{MessageID: "id\"1", Body: body, EnqueuedTime: &enq, SequenceNumber: ptr(int64(5)), DeliveryCount: 2}
	raw, err := encodeServiceBus(&ServiceBusTrigger{BindingName: "msg"}, msg, sysData{MethodName: "F", UtcNow: enq, RandGuid: "g"})
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Data     map[string]string
		Metadata map[string]json.RawMessage
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	var inner string
	if err := json.Unmarshal([]byte(env.Data["msg"]), &inner); err != nil || inner != string(body) {
		t.Errorf("Data.msg decodes twice to %q (%v), want %q", inner, err, body)
	}
	var id, count string
	_ = json.Unmarshal(env.Metadata["MessageId"], &id)
	if err := json.Unmarshal([]byte(id), &id); err != nil || id != `id"1` {
		t.Errorf("MessageId decodes twice to %q (%v)", id, err)
	}
	if err := json.Unmarshal(env.Metadata["DeliveryCount"], &count); err != nil || count != "2" {
		t.Errorf("DeliveryCount = %s, want the string \"2\"", env.Metadata["DeliveryCount"])
	}
	for _, absent := range []string{"ContentType", "CorrelationId", "SessionId", "DeadLetterSource", "To", "ReplyTo", "Subject", "Label"} {
		if _, ok := env.Metadata[absent]; ok {
			t.Errorf("Metadata.%s present for a null value", absent)
		}
	}
	if strings.Contains(string(raw), `\u003c`) {
		t.Error("HTML-escaped: the host does not escape <, > and &")
	}
}
