package main

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"appreg/emulator/armemu"
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

// BenchmarkRegisterFHIRAccess counts what FHIR access adds to a registration at Azure Resource
// Manager, through the real armauthorization client against the local one: a new client asking
// for two FHIR roles, and the same request delivered again. The goal is one PUT per role and no
// read on the happy path; a redelivery reads the principal's assignments once per FHIR service
// (that is what makes it idempotent) and writes nothing.
//
//	go test -run '^$' -bench RegisterFHIRAccess -benchtime 50x ./handler
func BenchmarkRegisterFHIRAccess(b *testing.B) {
	h := newHarness(b, map[string]string{config.EnvLogLevel: "warn"})
	body := func(i int) string {
		return fmt.Sprintf(`{"requestId":"fhir-bench-%d","clientName":"fhir-bench-%d","fhirAccess":{"roles":["FHIR Data Reader","FHIR Data Writer"]}}`, i, i)
	}
	report := func(b *testing.B, before map[string]int) {
		after := h.emu.ARM.Stats().Operations
		calls, puts := 0, after[armemu.OpCreateRoleAssignment]-before[armemu.OpCreateRoleAssignment]
		for op, n := range after {
			calls += n - before[op]
		}
		b.ReportMetric(float64(calls)/float64(b.N), "arm-calls/op")
		b.ReportMetric(float64(puts)/float64(b.N), "arm-puts/op")
		b.ReportMetric(float64(calls-puts)/float64(b.N), "arm-reads/op")
	}
	n := 0
	b.Run("new", func(b *testing.B) {
		before := h.emu.ARM.Stats().Operations
		for range b.N {
			if ev := h.register(body(n)); ev.Type != registrar.EventRegistered || len(ev.FHIRAccess) != 1 {
				b.Fatalf("event %+v", ev)
			}
			n++
		}
		report(b, before)
	})
	b.Run("redelivered", func(b *testing.B) {
		before := h.emu.ARM.Stats().Operations
		for i := range b.N {
			if ev := h.register(body(i % n)); ev.Type != registrar.EventRegistered {
				b.Fatalf("event %+v", ev)
			}
		}
		report(b, before)
	})
}
