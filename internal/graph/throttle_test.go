package graph_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"appreg/emulator/graphemu"
	"appreg/internal/registrar"
)

// kiota orders its middleware by map iteration, so each client is a fresh draw: several clients
// each retry a throttled addPassword, and every retry must resend a body Graph can read.
func TestThrottledWriteIsResentIntact(t *testing.T) {
	if testing.Short() {
		t.Skip("waits a second of Retry-After per client")
	}
	e := newEnv(t, nil)
	ctx := context.Background()
	for i := range 4 {
		name := fmt.Sprintf("throttled-%d", i)
		c, _, _ := e.newClient(t, name, nil, roleOwnedBy)
		app, _, err := c.UpsertApplication(ctx, spec(name))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.graph.InjectFault(graphemu.Fault{Operation: graphemu.OpAddPassword, Status: 429, RetryAfter: time.Second, Count: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AddPassword(ctx, app.ObjectID, registrar.PasswordSpec{DisplayName: "appreg t", End: time.Now().Add(time.Hour)}); err != nil {
			t.Errorf("client %d: addPassword after a 429: %v", i, err)
		}
	}
}
