package graphemu

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// WriteQuota is Graph's write limit for one app in one tenant: a token bucket of Writes tokens
// refilled at Writes per Window. Graph documents 3,000 writes per 150 s for identity and access
// (an app writing in bursts gets 429 with Retry-After once it has spent the bucket).
type WriteQuota struct {
	// Writes is the bucket's size and the writes allowed per Window; 0: Graph's 3,000; negative:
	// no limit.
	Writes int `json:"writes"`
	// Window is how long a full bucket takes to refill; 0: 150 s.
	Window time.Duration `json:"-"`
}

// GraphWriteQuota is Graph's documented write limit per app and tenant.
var GraphWriteQuota = WriteQuota{Writes: 3000, Window: 150 * time.Second}

func (q WriteQuota) normalized() (WriteQuota, error) {
	if q.Window < 0 {
		return q, fmt.Errorf("graph: negative write quota window")
	}
	if q.Writes == 0 {
		q.Writes = GraphWriteQuota.Writes
	}
	if q.Window == 0 {
		q.Window = GraphWriteQuota.Window
	}
	return q, nil
}

// writeLimiter holds one bucket per calling app and tenant. It runs on the wall clock.
type writeLimiter struct {
	mu      sync.Mutex
	quota   WriteQuota
	buckets map[string]*bucket
	// accepted and throttled count the writes let through and refused since the server started.
	accepted, throttled int
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newWriteLimiter(q WriteQuota) (*writeLimiter, error) {
	q, err := q.normalized()
	if err != nil {
		return nil, err
	}
	return &writeLimiter{quota: q, buckets: map[string]*bucket{}}, nil
}

// set changes the quota and refills every bucket.
func (l *writeLimiter) set(q WriteQuota) error {
	q, err := q.normalized()
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.quota, l.buckets = q, map[string]*bucket{}
	return nil
}

func (l *writeLimiter) get() WriteQuota {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.quota
}

// take spends one write of key's bucket, or answers Graph's 429: Retry-After in fractional
// seconds until the next token, and the headers that say which limit was hit. A refused write
// spends nothing. Above 80 % of the limit, Graph warns with x-ms-throttle-limit-percentage,
// returned as header for the successful response.
func (l *writeLimiter) take(key string, log *slog.Logger) (http.Header, *reply) {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.quota
	if q.Writes < 0 {
		return nil, nil
	}
	now := time.Now()
	rate := float64(q.Writes) / q.Window.Seconds() // tokens per second
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: float64(q.Writes), at: now}
		l.buckets[key] = b
	}
	b.tokens = min(float64(q.Writes), b.tokens+now.Sub(b.at).Seconds()*rate)
	b.at = now
	used := 1 - b.tokens/float64(q.Writes)
	if b.tokens >= 1 {
		b.tokens--
		l.accepted++
		if used >= 0.8 {
			return http.Header{"X-Ms-Throttle-Limit-Percentage": {strconv.FormatFloat(used, 'f', 2, 64)}}, nil
		}
		return nil, nil
	}
	l.throttled++
	wait := (1 - b.tokens) / rate
	log.Info("graph write throttled", "caller", key, "retryAfterSeconds", wait)
	rep := fail(http.StatusTooManyRequests, "TooManyRequests", "Please retry again later.")
	rep.innerCode = "429"
	rep.header = http.Header{
		"Retry-After":                    {strconv.FormatFloat(max(wait, 0.001), 'f', 3, 64)},
		"X-Ms-Throttle-Scope":            {"Tenant_Application/WriteLimit/" + key},
		"X-Ms-Throttle-Information":      {"WriteLimitExceeded"},
		"X-Ms-Throttle-Limit-Percentage": {"1.00"},
	}
	return nil, &rep
}

// WriteCounts reports the writes (every request but GET) Graph's write limit let through and the
// ones it refused with 429, since the server started: what a run spent of the budget.
func (s *Server) WriteCounts() (accepted, throttled int) {
	s.writes.mu.Lock()
	defer s.writes.mu.Unlock()
	return s.writes.accepted, s.writes.throttled
}
