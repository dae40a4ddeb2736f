package main

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"appreg/internal/config"
	"appreg/internal/registrar"
)

// BenchmarkRegister is one new client registered end to end, with production wiring: the
// invocation envelope, Graph (find, upsert app, upsert service principal, addPassword) through
// msgraph-sdk-go, Key Vault (latest, set) through azsecrets, and the event through azservicebus,
// all over loopback TLS or AMQP against azemu. It measures appreg's own cost per registration; in
// Azure, Graph's latency and write quota dominate (see the README).
//
//	go test -run '^$' -bench Register -benchtime 200x ./handler
func BenchmarkRegister(b *testing.B) {
	h := newHarness(b, map[string]string{config.EnvLogLevel: "warn"})
	b.ResetTimer()
	for i := range b.N {
		ev := h.register(fmt.Sprintf(`{"requestId":"bench-%d","clientName":"bench-%d"}`, i, i))
		if ev.Type != registrar.EventRegistered {
			b.Fatalf("event %+v", ev)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "registrations/s")
}

// BenchmarkRegisterConcurrent runs four registrations at a time, host.json's maxConcurrentCalls.
func BenchmarkRegisterConcurrent(b *testing.B) {
	h := newHarness(b, map[string]string{config.EnvLogLevel: "warn"})
	var n atomic.Int64
	b.SetParallelism(2) // 2 × GOMAXPROCS(2) = 4 in flight
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := fmt.Sprintf(`{"requestId":"bench-%d","clientName":"bench-%d"}`, i, i)
			if status, out := h.command("register", []byte(body), fmt.Sprint(i), 1); status != http.StatusOK {
				b.Errorf("status %d: %v", status, out.Logs)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "registrations/s")
}
