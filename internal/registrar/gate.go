package registrar

import (
	"context"
	"sync"
	"time"
)

// gate serialises credential changes per app and spaces Graph credential writes on one app:
// Graph answers 500 to concurrent or back-to-back passwordCredentials edits on the same object.
// It covers one handler process; across instances, Service Bus MessageIds and the
// recompute-from-state design keep duplicate work harmless.
type gate struct {
	spacing time.Duration
	now     func() time.Time
	sleep   func(context.Context, time.Duration) error

	mu    sync.Mutex
	apps  map[string]*appGate
	edits map[string]time.Time // last credential edit per app object id
}

type appGate struct {
	lock chan struct{} // a one-slot semaphore, so waiting honours ctx
	refs int
}

func newGate(spacing time.Duration, now func() time.Time, sleep func(context.Context, time.Duration) error) *gate {
	return &gate{spacing: spacing, now: now, sleep: sleep, apps: map[string]*appGate{}, edits: map[string]time.Time{}}
}

// lock takes the per-app lock for key (the clientName) and returns its release.
func (g *gate) lock(ctx context.Context, key string) (func(), error) {
	g.mu.Lock()
	a := g.apps[key]
	if a == nil {
		a = &appGate{lock: make(chan struct{}, 1)}
		g.apps[key] = a
	}
	a.refs++
	g.mu.Unlock()

	release := func() {
		g.mu.Lock()
		a.refs--
		if a.refs == 0 {
			delete(g.apps, key)
		}
		g.mu.Unlock()
	}
	select {
	case a.lock <- struct{}{}:
		return func() { <-a.lock; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// edit waits until the spacing since the last credential edit on the app has passed, runs fn,
// and records the edit.
func (g *gate) edit(ctx context.Context, appObjectID string, fn func() error) error {
	g.mu.Lock()
	last, ok := g.edits[appObjectID]
	g.mu.Unlock()
	if ok {
		if wait := last.Add(g.spacing).Sub(g.now()); wait > 0 {
			if err := g.sleep(ctx, wait); err != nil {
				return err
			}
		}
	}
	err := fn()
	g.mu.Lock()
	g.edits[appObjectID] = g.now()
	// Forget apps whose spacing has long passed, so the map stays as small as the working set.
	for id, t := range g.edits {
		if g.now().Sub(t) > g.spacing+time.Minute {
			delete(g.edits, id)
		}
	}
	g.mu.Unlock()
	return err
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
