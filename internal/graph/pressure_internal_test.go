package graph

import (
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
