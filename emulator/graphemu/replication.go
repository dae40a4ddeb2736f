package graphemu

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Replication is how Graph's directory replicas catch up with a write. Graph serves each request
// from whichever replica the load balancer picks, and a replica learns of a write some time after
// it was made: so a new object is invisible for a while, then visible, and can be invisible again
// when the next request lands on a replica that is further behind, until every replica has it.
// The emulator keeps Replicas read replicas; each learns of each write (a create, a property
// change, a new or removed password, a delete or restore) after its own delay, drawn uniformly
// from [MinLag, MaxLag] with the server's seeded random source, and each request is served by one
// replica picked at random. The zero value is a directory with no lag, as the kind profile wants.
type Replication struct {
	// Replicas is the number of read replicas, 1 to 16; 0 with a MaxLag means 3.
	Replicas int `json:"replicas"`
	// MinLag and MaxLag bound each replica's delay; MaxLag 0 switches lag off for new writes.
	MinLag time.Duration `json:"-"`
	MaxLag time.Duration `json:"-"`
}

// maxReplicas bounds Replication.Replicas.
const maxReplicas = 16

// Realistic is the replication of the realistic profile: three replicas that each learn of a
// write within 0.2 to 4 s. Graph publishes no figure; field reports have new objects 404 for
// seconds and new secrets refused for 4 to 18 s. The bounds are kept short so that a test
// suite running every registration through them still finishes in minutes.
var Realistic = Replication{Replicas: 3, MinLag: 200 * time.Millisecond, MaxLag: 4 * time.Second}

// normalized checks r and fills in the default replica count.
func (r Replication) normalized() (Replication, error) {
	switch {
	case r.MinLag < 0 || r.MaxLag < 0:
		return r, fmt.Errorf("graph: negative replication lag")
	case r.MinLag > r.MaxLag:
		return r, fmt.Errorf("graph: replication minLag %v is above maxLag %v", r.MinLag, r.MaxLag)
	case r.Replicas < 0 || r.Replicas > maxReplicas:
		return r, fmt.Errorf("graph: replicas must be 1 to %d, not %d", maxReplicas, r.Replicas)
	}
	if r.Replicas == 0 {
		r.Replicas = 1
		if r.MaxLag > 0 {
			r.Replicas = 3
		}
	}
	return r, nil
}

// primary is the replica index of the writable copy, which has every write at once. Upserts by
// alternate key are served there, which is what lets a retried upsert converge.
const primary = -1

// arrivals is when each replica learns of one write, on the wall clock; nil means every replica
// has it already.
type arrivals []time.Time

// has reports whether replica r has learnt of the write. Lag runs on the wall clock, not the
// injected one, so a frozen test clock cannot freeze replication.
func (a arrivals) has(r int) bool {
	return a == nil || r < 0 || r >= len(a) || !time.Now().Before(a[r])
}

// settled reports whether every replica has the write.
func (a arrivals) settled() bool {
	if a == nil {
		return true
	}
	now := time.Now()
	for _, t := range a {
		if now.Before(t) {
			return false
		}
	}
	return true
}

// replicator draws the delays of writes and the replica of each request, under Server.mu.
type replicator struct {
	cfg Replication
	rng *rand.Rand
}

func newReplicator(cfg Replication, seed uint64) *replicator {
	return &replicator{cfg: cfg, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// write returns when each replica learns of a write made now; nil when lag is off.
func (p *replicator) write() arrivals {
	if p.cfg.MaxLag <= 0 {
		return nil
	}
	now := time.Now()
	a := make(arrivals, p.cfg.Replicas)
	spread := int64(p.cfg.MaxLag - p.cfg.MinLag)
	for i := range a {
		d := p.cfg.MinLag
		if spread > 0 {
			d += time.Duration(p.rng.Int64N(spread + 1))
		}
		a[i] = now.Add(d)
	}
	return a
}

// pick is the replica that serves one request.
func (p *replicator) pick() int {
	if p.cfg.Replicas <= 1 {
		return 0
	}
	return p.rng.IntN(p.cfg.Replicas)
}
