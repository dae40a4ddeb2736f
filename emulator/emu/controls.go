package emu

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"
)

// AnyOperation in Fault.Operation or SetLatency matches every operation of the service.
const AnyOperation = "*"

// Fault makes matching calls fail, slow down, or both, for the next Count calls or, with Count
// 0, until ClearFaults or Reset. Faults are matched in the order they were injected; the first
// one whose Operation matches is used and one of its Count spent.
type Fault struct {
	// Operation is one of the service's operation names (its package lists them), or "" or "*"
	// for every operation.
	Operation string
	// Status is the HTTP status to answer with (Service Bus maps it to an AMQP condition); 0
	// only delays the real answer by Latency.
	Status int
	// Code and Message fill the service's error body; "" picks the service's usual ones for
	// Status.
	Code    string
	Message string
	// Latency is waited before answering.
	Latency time.Duration
	// RetryAfter is sent as Retry-After (or in the service's own way) in whole seconds,
	// rounded up.
	RetryAfter time.Duration
	// Count is how many calls the fault applies to; 0 means until cleared.
	Count int
	// Probability in (0, 1) applies the fault to that fraction of matching calls, chosen at
	// random; the others fall through to later faults or are served. 0 (or 1) is every call.
	// A chaos run injects "5 % of Graph calls fail" this way.
	Probability float64
	// For, when positive, disarms the fault that long after it was injected, as a role grant
	// that catches up after 90 seconds does.
	For time.Duration

	expires time.Time
}

func (f Fault) matches(op string) bool {
	return f.Operation == "" || f.Operation == AnyOperation || f.Operation == op
}

// RetryAfterSeconds is RetryAfter as a Retry-After header counts it: whole seconds, rounded up.
func (f Fault) RetryAfterSeconds() int64 { return int64(math.Ceil(f.RetryAfter.Seconds())) }

// Stats counts what a service was asked since it started or was last Reset.
type Stats struct {
	// Operations counts calls per operation, faulted and throttled ones included.
	Operations map[string]int `json:"operations"`
	// Faults counts the calls a fault applied to, latency-only faults and throttles included.
	Faults int `json:"faultsInjected"`
}

// Config describes a service to its Controls.
type Config struct {
	// Service is the name under /_emu/ and in error messages: entra, graph, keyvault,
	// servicebus, arm or fhir.
	Service string
	// Operations are the names faults, throttles and latency may target.
	Operations []string
	// Statuses limits the statuses a fault may carry; nil means 400..599.
	Statuses func(status int) bool
	// ResetData empties the service's data down to what was seeded. Reset calls it after the
	// controls are cleared, without holding their lock.
	ResetData func()
	// State is the service's typed state, for GET /_emu/<service>/state.
	State func() any
}

// Controls are a service's test controls. Each emulator's Server embeds one, so every emulator
// has the same control methods; the data plane asks Take before serving each call.
type Controls struct {
	cfg Config

	mu      sync.Mutex
	faults  []*Fault
	latency map[string]time.Duration
	calls   map[string]int
	faulted int
}

// New returns the controls of a service.
func New(cfg Config) *Controls {
	return &Controls{cfg: cfg, latency: map[string]time.Duration{}, calls: map[string]int{}}
}

// Service is the service's name under /_emu/.
func (c *Controls) Service() string { return c.cfg.Service }

// Operations lists the operations faults and latency can target.
func (c *Controls) Operations() []string { return slices.Clone(c.cfg.Operations) }

func (c *Controls) checkOp(op string) error {
	if op == "" || op == AnyOperation || slices.Contains(c.cfg.Operations, op) {
		return nil
	}
	return fmt.Errorf("%s: unknown operation %q (want one of %v or %q)", c.cfg.Service, op, c.cfg.Operations, AnyOperation)
}

// InjectFault queues a fault after those already armed.
func (c *Controls) InjectFault(f Fault) error {
	if err := c.checkOp(f.Operation); err != nil {
		return err
	}
	ok := f.Status >= 400 && f.Status <= 599
	if c.cfg.Statuses != nil {
		ok = c.cfg.Statuses(f.Status)
	}
	switch {
	case f.Status != 0 && !ok:
		return fmt.Errorf("%s: fault status %d is not an error status the service can answer with", c.cfg.Service, f.Status)
	case f.Status == 0 && f.Latency <= 0:
		return fmt.Errorf("%s: a fault needs a status or a latency", c.cfg.Service)
	case f.Count < 0 || f.Latency < 0 || f.RetryAfter < 0 || f.For < 0:
		return fmt.Errorf("%s: negative count, latency, retryAfter or for in a fault", c.cfg.Service)
	case f.Probability < 0 || f.Probability > 1:
		return fmt.Errorf("%s: fault probability %v is outside [0, 1]", c.cfg.Service, f.Probability)
	}
	if f.For > 0 {
		f.expires = time.Now().Add(f.For)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = append(c.faults, &f)
	return nil
}

// Throttle answers the next count calls of op ("" or "*": every operation; count 0: until
// cleared) as the service does when it throttles: HTTP 429 with Retry-After, or Service Bus's
// server-busy error.
func (c *Controls) Throttle(op string, retryAfter time.Duration, count int) error {
	return c.InjectFault(Fault{Operation: op, Status: http.StatusTooManyRequests, RetryAfter: retryAfter, Count: count})
}

// ClearFaults drops every armed fault and throttle.
func (c *Controls) ClearFaults() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = nil
}

// Faults lists the armed faults in matching order; Count is what remains of each.
func (c *Controls) Faults() []Fault {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Fault, len(c.faults))
	for i, f := range c.faults {
		out[i] = *f
	}
	return out
}

// SetLatency makes every call of op ("*": of every operation without a latency of its own) wait
// d before it is served, until Reset; d 0 removes it. Unlike a Fault's Latency it does not run
// out, so a test can hold a service slow while a client retries.
func (c *Controls) SetLatency(op string, d time.Duration) error {
	if op == "" {
		op = AnyOperation
	}
	if err := c.checkOp(op); err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("%s: negative latency", c.cfg.Service)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d == 0 {
		delete(c.latency, op)
	} else {
		c.latency[op] = d
	}
	return nil
}

// Latency returns the standing latencies by operation.
func (c *Controls) Latency() map[string]time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.latency)
}

// Stats returns a copy of the counters.
func (c *Controls) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Operations: maps.Clone(c.calls), Faults: c.faulted}
}

// Reset clears faults, throttles, latency and statistics, then empties the service's data down
// to what was seeded (see the package documentation).
func (c *Controls) Reset() {
	c.mu.Lock()
	c.faults, c.latency, c.calls, c.faulted = nil, map[string]time.Duration{}, map[string]int{}, 0
	c.mu.Unlock()
	if c.cfg.ResetData != nil {
		c.cfg.ResetData()
	}
}

// Take is the data plane's side: it counts one call of op and returns how long to wait before
// answering and the fault to answer with (nil: serve the call). The wait is the standing latency
// plus the fault's own.
func (c *Controls) Take(op string) (time.Duration, *Fault) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[op]++
	wait, ok := c.latency[op]
	if !ok {
		wait = c.latency[AnyOperation]
	}
	now := time.Now()
	c.faults = slices.DeleteFunc(c.faults, func(f *Fault) bool { return !f.expires.IsZero() && now.After(f.expires) })
	for i, f := range c.faults {
		if !f.matches(op) {
			continue
		}
		if f.Probability > 0 && f.Probability < 1 && rand.Float64() >= f.Probability {
			continue
		}
		hit := *f
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				c.faults = slices.Delete(c.faults, i, i+1)
			}
		}
		c.faulted++
		return wait + hit.Latency, &hit
	}
	return wait, nil
}

// Sleep waits d, or less if ctx ends first; it reports whether the whole wait passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// latencyList is the latency table in a stable order, for GET /_emu/<service>/latency.
func (c *Controls) latencyList() []latencyJSON {
	out := []latencyJSON{}
	for op, d := range c.Latency() {
		out = append(out, latencyJSON{Operation: op, LatencyMS: d.Milliseconds()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Operation < out[j].Operation })
	return out
}

// errUnknownControl is a control route that does not exist.
var errUnknownControl = errors.New("no such control")
