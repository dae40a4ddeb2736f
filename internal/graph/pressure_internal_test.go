package graph

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// A warning older than pressureMemory says nothing about the budget now.
func TestWritePressureFades(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	w := &writePressure{now: func() time.Time { return now }}
	w.level, w.at = 0.9, now
	if got := w.get(); got != 0.9 {
		t.Fatalf("fresh warning: %v", got)
	}
	now = now.Add(pressureMemory + time.Millisecond)
	if got := w.get(); got != 0 {
		t.Errorf("after %v: %v, want 0", pressureMemory, got)
	}
}

// A lower warning, or none, does not lower a recent higher one.
func TestWritePressureKeepsTheHighest(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	w := &writePressure{now: func() time.Time { return now }}
	w.level, w.at = 1, now
	now = now.Add(time.Second)
	w.record(0.85)
	w.record(0)
	if got := w.get(); got != 1 {
		t.Errorf("after a lower warning and none: %v, want 1", got)
	}
	now = now.Add(pressureMemory)
	w.record(0.85)
	if got := w.get(); got != 0.85 {
		t.Errorf("once the 1 is older than %v: %v, want the newer 0.85", pressureMemory, got)
	}
}

// Pacing starts at Graph's first write-limit 429, slows by a fifth on each further one, speeds up
// with every accepted write, ends once fast enough, and ignores 429s that are not the write limit.
func TestWritePacingAdapts(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	w := &writePressure{now: func() time.Time { return now }}
	limit := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{
		"X-Ms-Throttle-Information": {"WriteLimitExceeded"}, "Retry-After": {"0.05"}}}
	other := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"1"}}}
	accepted := &http.Response{StatusCode: http.StatusNoContent, Header: http.Header{}}

	w.adapt(other)
	w.adapt(accepted)
	if w.rate != 0 {
		t.Fatalf("paced (%v/s) without a write-limit 429", w.rate)
	}
	w.adapt(limit)
	if w.rate != startRate {
		t.Fatalf("after the first write-limit 429: %v/s, want %v", w.rate, startRate)
	}
	w.adapt(limit)
	if w.rate != startRate*0.8 {
		t.Errorf("after a second: %v/s, want %v", w.rate, startRate*0.8)
	}
	before := w.rate
	w.adapt(accepted)
	if w.rate != before+paceGain/before {
		t.Errorf("after an accepted write: %v/s, want %v", w.rate, before+paceGain/before)
	}

	// Slots are 1/rate apart: the first write goes at once, the next must wait for its slot.
	w.rate = 10
	if err := w.pace(context.Background()); err != nil {
		t.Fatalf("first paced write waited: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.pace(ctx); err == nil {
		t.Error("the second paced write went out without waiting for its slot")
	}
	if want := now.Add(200 * time.Millisecond); !w.next.Equal(want) {
		t.Errorf("next slot %v, want %v", w.next, want)
	}

	// After a quiet spell the budget has refilled: the next write goes unpaced.
	now = w.next.Add(pacingIdle + time.Second)
	if err := w.pace(ctx); err != nil || w.rate != 0 {
		t.Errorf("after %v without writes: %v, rate %v/s; want unpaced", pacingIdle, err, w.rate)
	}

	w.rate = startRate
	for w.rate != 0 {
		w.adapt(accepted)
		if w.rate > maxRate {
			t.Fatalf("rate %v/s past %v without pacing ending", w.rate, maxRate)
		}
	}
}
