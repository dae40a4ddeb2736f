package graph_test

import (
	"context"
	"testing"
	"time"

	"appreg/emulator/graphemu"
)

// Graph warns with x-ms-throttle-limit-percentage once a write takes the caller past 80 % of its
// write limit; the adapter reports the warning for a while after.
func TestWritePressure(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	// Seven writes, refilled too slowly to matter: the seventh is sent with 6/7 of the budget
	// spent, past Graph's 80 % warning level; the sixth with 5/7, short of it.
	if err := e.graph.SetWriteQuota(graphemu.WriteQuota{Writes: 7, Window: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateApplication(ctx, spec("pressed")); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 7; i++ {
		if _, _, err := e.client.UpsertApplication(ctx, spec("pressed")); err != nil {
			t.Fatal(err)
		}
		got := e.client.WritePressure()
		if warned := got >= 0.8 && got < 1; warned != (i == 7) || (i < 7 && got != 0) {
			t.Errorf("after write %d: pressure %v; want a warning (0.8 to 1) only after the seventh", i, got)
		}
	}
	// Reads say nothing about the write budget.
	warned := e.client.WritePressure()
	if _, err := e.client.FindApplication(ctx, "appreg-pressed"); err != nil {
		t.Fatal(err)
	}
	if got := e.client.WritePressure(); got != warned {
		t.Errorf("a read changed the pressure from %v to %v", warned, got)
	}
	// A write that finds budget to spare does not clear it: under a backlog, such writes come
	// between 429s. The warning fades with time instead (TestWritePressureFades).
	if err := e.graph.SetWriteQuota(graphemu.WriteQuota{Writes: 1000, Window: time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.client.UpsertApplication(ctx, spec("pressed")); err != nil {
		t.Fatal(err)
	}
	if got := e.client.WritePressure(); got != warned {
		t.Errorf("after a write with budget to spare: pressure %v, want the warning, %v, kept", got, warned)
	}
}
