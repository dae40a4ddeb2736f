package registrar

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Options tune a Service. A nil *Options, and every zero field, means the default in brackets.
type Options struct {
	TenantID         string // recorded in events and tags
	AppNamePrefix    string // uniqueName = prefix + clientName ["appreg-"]
	SecretNamePrefix string // Key Vault name = prefix + clientName + SecretNameSuffix [""]
	SecretNameSuffix string // ["-client-secret"]

	MaxLifetimeDays     int // [180]
	DefaultLifetimeDays int // [90]

	RotateBefore time.Duration // rotate when exp is this close, capped at lifetime/3 [720h]
	RetireAfter  time.Duration // remove a superseded password after this long [168h]
	OrphanAfter  time.Duration // remove an unreferenced appreg password after this long [15m]

	MaxDeliveryCount int // the queue's MaxDeliveryCount; the attempt reaching it publishes "failed" [10]

	ReplicationTimeout time.Duration // how long to wait out directory replication [3m]
	RetryBase          time.Duration // first backoff for replication and store retries [2s]
	RetryMax           time.Duration // backoff cap [20s]
	StoreAttempts      int           // Key Vault write attempts before compensating [3]
	EditSpacing        time.Duration // minimum gap between credential edits on one app [10s]
	ScanConcurrency    int           // apps examined in parallel by ScheduleRotations [4]

	// Verifier, when set, signs in with every new secret before its event is published, retrying
	// for up to VerifyTimeout [2m] while Entra replicates the password.
	Verifier      Verifier
	VerifyTimeout time.Duration

	// SelfAppID is the appId of the identity appreg runs as; it never acts on it.
	SelfAppID string

	Logger *slog.Logger
	Now    func() time.Time
	// Sleep waits for d or until ctx ends; tests replace it to make backoff instant.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a value in [0, n); tests make it deterministic.
	Jitter func(n time.Duration) time.Duration
}

// Service runs the registration saga, rotation jobs and the rotation scheduler.
type Service struct {
	dir   Directory
	store SecretStore
	pub   Publisher
	opt   Options
	log   *slog.Logger
	gate  *gate
}

// New returns a Service over the given adapters.
func New(dir Directory, store SecretStore, pub Publisher, opts *Options) *Service {
	var o Options
	if opts != nil {
		o = *opts
	}
	def := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	defInt := func(p *int, d int) {
		if *p <= 0 {
			*p = d
		}
	}
	if o.AppNamePrefix == "" {
		o.AppNamePrefix = "appreg-"
	}
	if o.SecretNameSuffix == "" {
		o.SecretNameSuffix = "-client-secret"
	}
	defInt(&o.MaxLifetimeDays, 180)
	defInt(&o.DefaultLifetimeDays, 90)
	def(&o.RotateBefore, 720*time.Hour)
	def(&o.RetireAfter, 168*time.Hour)
	def(&o.OrphanAfter, 15*time.Minute)
	defInt(&o.MaxDeliveryCount, 10)
	def(&o.ReplicationTimeout, 3*time.Minute)
	def(&o.RetryBase, 2*time.Second)
	def(&o.RetryMax, 20*time.Second)
	defInt(&o.StoreAttempts, 3)
	def(&o.EditSpacing, 10*time.Second)
	defInt(&o.ScanConcurrency, 4)
	def(&o.VerifyTimeout, 2*time.Minute)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	if o.Jitter == nil {
		o.Jitter = func(n time.Duration) time.Duration {
			if n <= 0 {
				return 0
			}
			return rand.N(n)
		}
	}
	return &Service{
		dir: dir, store: store, pub: pub, opt: o, log: o.Logger,
		gate: newGate(o.EditSpacing, o.Now, o.Sleep),
	}
}

// Limits returns the lifetime policy requests are validated against.
func (s *Service) Limits() Limits {
	return Limits{MaxLifetimeDays: s.opt.MaxLifetimeDays, DefaultLifetimeDays: s.opt.DefaultLifetimeDays}
}

// UniqueName is the Graph uniqueName of a client's app.
func (s *Service) UniqueName(clientName string) string { return s.opt.AppNamePrefix + clientName }

// SecretName is the Key Vault secret name of a client's secret.
func (s *Service) SecretName(clientName string) string {
	return s.opt.SecretNamePrefix + clientName + s.opt.SecretNameSuffix
}

// Delivery is what the trigger knows about the message being handled.
type Delivery struct {
	MessageID     string
	DeliveryCount int // 1 on the first attempt
}

// finalAttempt reports whether a failure now will dead-letter the message.
func (s *Service) finalAttempt(d Delivery) bool { return d.DeliveryCount >= s.opt.MaxDeliveryCount }

// retry runs fn until it succeeds, fails with an error that retrying cannot fix, or the budget
// is spent. Waits grow exponentially with full jitter, and honour a service's Retry-After.
func (s *Service) retry(ctx context.Context, budget time.Duration, attempts int, retryable func(error) bool, fn func() error) error {
	deadline := s.opt.Now().Add(budget)
	backoff := s.opt.RetryBase
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !retryable(err) {
			return err
		}
		if attempts > 0 && attempt >= attempts {
			return err
		}
		wait := backoff/2 + s.opt.Jitter(backoff/2+1)
		var e *Error
		if errors.As(err, &e) && e.RetryAfter > wait {
			wait = e.RetryAfter
		}
		if budget > 0 && s.opt.Now().Add(wait).After(deadline) {
			return err
		}
		if serr := s.opt.Sleep(ctx, wait); serr != nil {
			return errors.Join(err, serr)
		}
		backoff = min(backoff*2, s.opt.RetryMax)
	}
}

func isReplicating(err error) bool { return ErrorCode(err) == CodeReplicating }

// publish sends an event, stamping it with the tenant and the time, and returns what it sent.
func (s *Service) publish(ctx context.Context, e Event) (Event, error) {
	if e.TenantID == "" {
		e.TenantID = s.opt.TenantID
	}
	if e.OccurredAt.IsZero() {
		e.OccurredAt = s.opt.Now().UTC()
	}
	if err := s.pub.Publish(ctx, e); err != nil {
		return e, err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "event published",
		slog.String("event", string(e.Type)), slog.String("requestId", e.RequestID),
		slog.String("clientName", e.ClientName), slog.String("appId", e.AppID), slog.String("keyId", e.KeyID))
	return e, nil
}
