package graph

import (
	"math"
	"net/http"
	"strconv"
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
type writePressure struct {
	now func() time.Time

	mu    sync.Mutex
	level float64 // the highest warning since at, at most pressureMemory ago
	at    time.Time
}

func (w *writePressure) Intercept(p khttp.Pipeline, i int, req *http.Request) (*http.Response, error) {
	res, err := p.Next(req, i)
	if err != nil || req.Method == http.MethodGet {
		return res, err
	}
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
