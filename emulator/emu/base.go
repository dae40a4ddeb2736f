package emu

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"

	"appreg/emulator/internal/ca"
	"appreg/emulator/internal/token"
)

// Base is what an HTTPS emulator takes from its options and fills in the same way when they
// leave it out: the clock, the logger, the tenant, the CA its certificate chains to and the
// issuer whose tokens it accepts.
type Base struct {
	Authority *ca.Authority
	Issuer    *token.Issuer
	TenantID  string
	Now       func() time.Time
	Log       *slog.Logger
}

// Defaults fills the zero fields: time.Now, a discarding logger, a random tenant, a new CA and a
// new issuer on that clock. service names the emulator in errors.
func (b *Base) Defaults(service string) error {
	if b.Now == nil {
		b.Now = time.Now
	}
	if b.Log == nil {
		b.Log = slog.New(slog.DiscardHandler)
	}
	if b.TenantID == "" {
		b.TenantID = uuid.NewString()
	}
	var err error
	if b.Authority == nil {
		if b.Authority, err = ca.New(); err != nil {
			return fmt.Errorf("%s: %w", service, err)
		}
	}
	if b.Issuer == nil {
		if b.Issuer, err = token.NewIssuer(b.Now); err != nil {
			return fmt.Errorf("%s: %w", service, err)
		}
	}
	return nil
}

// ServeTLS listens on addr ("" = a free loopback port) and serves h over TLS with a certificate
// of the base's CA.
func (b *Base) ServeTLS(service, addr string, h http.Handler) (*HTTPServer, error) {
	ln, err := Listen(addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", service, err)
	}
	return Serve(ln, h, b.Authority.ServerTLS(), b.Log), nil
}

// Delay is a duration a test may change while a server runs, such as how late role
// assignments reach a data plane.
type Delay struct {
	mu sync.Mutex
	d  time.Duration
}

// NewDelay is d, or def when d is zero; a negative d means none.
func NewDelay(d, def time.Duration) *Delay {
	if d == 0 {
		d = def
	}
	return &Delay{d: max(d, 0)}
}

// Set changes the delay; a negative one means none.
func (d *Delay) Set(v time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.d = max(v, 0)
}

// Get returns the delay.
func (d *Delay) Get() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.d
}
