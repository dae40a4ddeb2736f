package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"appreg/internal/registrar"
	"appreg/internal/testutil"
)

// BenchmarkEnqueueWait is `appreg enqueue --wait` as a requester runs it, from the start of the
// command to the printed outcome, with the CLI's own polling; goroutines stand in for the
// handler and answer each request the moment they take it off the queue. It runs with an empty
// events subscription and with 10,000 events of other requests already retained on it: the wait
// must not grow with that backlog.
//
//	go test -run '^$' -bench EnqueueWait -benchtime 40x ./cmd/appreg
func BenchmarkEnqueueWait(b *testing.B) {
	for _, retained := range []int{0, 10000} {
		b.Run(fmt.Sprintf("retained=%d", retained), func(b *testing.B) {
			h := newHarness(b)
			// Four session receivers, as host.json's maxConcurrentSessions gives one instance: one
			// is always free to take the next client's session at once.
			for range 4 {
				h.fakeHandler(func(m *azservicebus.ReceivedMessage) *registrar.Event {
					req := bodyOf(m)
					return &registrar.Event{Type: registrar.EventRegistered, RequestID: req["requestId"], ClientName: req["clientName"], AppID: "app-" + req["requestId"]}
				})
			}
			h.retain(retained)
			var took []time.Duration
			b.ResetTimer()
			for i := range b.N {
				var out, errb testutil.Buffer
				c := newCLI(h.getenv, &out, &errb) // the CLI's own polling, not the tests' faster one
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				start := time.Now()
				code := c.main(ctx, []string{"enqueue", "--client-name", fmt.Sprintf("bench-%d", i), "--wait"})
				took = append(took, time.Since(start))
				cancel()
				if code != exitOK {
					b.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
				}
			}
			b.StopTimer()
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[len(took)*9/10].Microseconds())/1000, "p90-ms")
		})
	}
}

// retain puts n events of other requests on the events topic, as days of traffic leave them on
// the subscription the CLI peeks.
func (h *harness) retain(n int) {
	h.t.Helper()
	if n == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := h.sb.NewSender(topic, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	defer s.Close(ctx)
	batch, err := s.NewMessageBatch(ctx, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	flush := func() {
		if batch.NumMessages() == 0 {
			return
		}
		if err := s.SendMessageBatch(ctx, batch, nil); err != nil {
			h.t.Fatal(err)
		}
		if batch, err = s.NewMessageBatch(ctx, nil); err != nil {
			h.t.Fatal(err)
		}
	}
	for i := range n {
		body, _ := json.Marshal(registrar.Event{Type: registrar.EventRegistered, RequestID: fmt.Sprintf("old-%d", i), ClientName: fmt.Sprintf("old-%d", i), OccurredAt: time.Now().UTC()})
		m := &azservicebus.Message{MessageID: to.Ptr(fmt.Sprintf("old-%d:registered", i)), Subject: to.Ptr("registered"), Body: body}
		if err := batch.AddMessage(m, nil); err != nil {
			flush()
			if err := batch.AddMessage(m, nil); err != nil {
				h.t.Fatal(err)
			}
		}
	}
	flush()
}
