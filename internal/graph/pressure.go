package graph

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	khttp "github.com/microsoft/kiota-http-go"
)

// pressureMemory is how long a warning from Graph counts. Graph refills the write budget
// continuously, so under a backlog the writes that happen to find it a fifth full come back
// without a warning between 429s; the highest warning of the last seconds says more than the
// latest answer.
const pressureMemory = 10 * time.Second

// writePressure remembers how close Graph has lately said this identity is to its write limit.
// Above 80 % of the limit Graph adds x-ms-throttle-limit-percentage to a write's response (0.8 to
// 1.0); a 429 is over it. It is middleware, so it sees every attempt kiota's retry handler
// makes, 429s included.
//
// It also paces writes once Graph's write limit (per app and tenant, so shared by every write
// this identity sends) has answered 429: writes then go out at a rate that a write-limit 429
// cuts by a fifth and each accepted write raises by paceGain per second, the way TCP shares a
// link, so a backlog settles near the rate the limit allows instead of meeting it with a burst
// of 429s every time the budget refills. Pacing ends when the rate passes maxRate or no write
// has gone out for pacingIdle. Reads are never held.
type writePressure struct {
	now func() time.Time

	mu    sync.Mutex
	level float64 // the highest warning since at, at most pressureMemory ago
	at    time.Time
	rate  float64   // paced writes per second; 0: not pacing
	next  time.Time // the next paced write's slot
}

// Pacing: the rate a first write-limit 429 starts it at, its floor, the rate at which it ends,
// and how fast accepted writes raise it (writes per second, per second).
const (
	startRate = 10.0
	minRate   = 0.5
	maxRate   = 200.0
	paceGain  = 4.0
)

// pacingIdle ends pacing when no write has gone out for this long.
const pacingIdle = 30 * time.Second

func (w *writePressure) Intercept(p khttp.Pipeline, i int, req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet {
		return p.Next(req, i)
	}
	if err := w.pace(req.Context()); err != nil {
		return nil, err
	}
	res, err := p.Next(req, i)
	if err != nil {
		return res, err
	}
	w.adapt(res)
	level := 0.0
	if res.StatusCode == http.StatusTooManyRequests {
		level = 1
	} else if v, perr := strconv.ParseFloat(res.Header.Get("x-ms-throttle-limit-percentage"), 64); perr == nil && !math.IsNaN(v) {
		level = min(max(v, 0), 1)
	}
	w.record(level)
	return res, err
}

// record notes a write's level; 0 (no warning) changes nothing.
func (w *writePressure) record(level float64) {
	if level <= 0 {
		return
	}
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if level >= w.level || now.Sub(w.at) > pressureMemory {
		w.level, w.at = level, now
	}
}

// pace waits for this write's slot, when writes are paced.
func (w *writePressure) pace(ctx context.Context) error {
	w.mu.Lock()
	if w.rate == 0 {
		w.mu.Unlock()
		return nil
	}
	now := w.now()
	if now.Sub(w.next) > pacingIdle {
		// No write for a while: the budget has refilled, so the next burst starts unpaced.
		w.rate = 0
		w.mu.Unlock()
		return nil
	}
	slot := now
	if w.next.After(slot) {
		slot = w.next
	}
	w.next = slot.Add(time.Duration(float64(time.Second) / w.rate))
	w.mu.Unlock()
	wait := slot.Sub(now)
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// adapt cuts the rate on a write-limit 429 and raises it on an accepted write.
func (w *writePressure) adapt(res *http.Response) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case res.StatusCode == http.StatusTooManyRequests && writeLimit(res.Header):
		if w.rate == 0 {
			w.rate, w.next = startRate, w.now()
		} else {
			w.rate = max(w.rate*0.8, minRate)
		}
	case res.StatusCode < 300 && w.rate > 0:
		// One write per 1/rate seconds, each adding paceGain/rate: paceGain per second.
		if w.rate += paceGain / w.rate; w.rate > maxRate {
			w.rate = 0
		}
	}
}

// writeLimit reports whether a 429 is Graph's write limit per app and tenant (rather than a limit
// on one object or a service's own throttling).
func writeLimit(h http.Header) bool {
	return h.Get("x-ms-throttle-information") == "WriteLimitExceeded" || strings.Contains(h.Get("x-ms-throttle-scope"), "/WriteLimit/")
}

// get is the highest level Graph reported within pressureMemory, or 0.
func (w *writePressure) get() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.now().Sub(w.at) > pressureMemory {
		return 0
	}
	return w.level
}

// WritePressure reports how close Graph has said, within the last 10 s, that appreg's identity
// is to its write limit, from 0 to 1 (x-ms-throttle-limit-percentage; 1 is throttled). It implements registrar's optional
// WritePressure.
func (c *Client) WritePressure() float64 { return c.pressure.get() }
