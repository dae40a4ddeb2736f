package registrar

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Options tune a Service. A nil *Options, and every zero field, means the value in Defaults.
type Options struct {
	TenantID         string // recorded in events and tags
	AppNamePrefix    string // uniqueName = prefix + clientName
	SecretNamePrefix string // Key Vault name = prefix + clientName + SecretNameSuffix
	SecretNameSuffix string

	MaxLifetimeDays     int // the longest lifetime a request may ask for
	DefaultLifetimeDays int // the lifetime of a request that names none

	RotateBefore time.Duration // rotate when exp is this close, capped at lifetime/3
	RetireAfter  time.Duration // remove a superseded password after this long
	OrphanAfter  time.Duration // remove an unreferenced appreg password after this long

	MaxDeliveryCount int // the queue's MaxDeliveryCount; the attempt reaching it publishes "failed"
	// RetryBudget is how long, from a command's enqueue time, its retryable failures are retried
	// across deliveries before it is given up; AttemptTimeout caps one delivery's share of it.
	RetryBudget    time.Duration
	AttemptTimeout time.Duration

	ReplicationTimeout time.Duration // how long to wait out directory replication
	RetryBase          time.Duration // first backoff for replication and store retries
	RetryMax           time.Duration // backoff cap
	StoreAttempts      int           // Key Vault write attempts before compensating
	EditSpacing        time.Duration // minimum gap between credential edits on one app

	// Verifier, when set, signs in with every new secret before its event is published, until it
	// has succeeded VerifySuccesses times in a row, VerifyInterval apart, within VerifyTimeout.
	Verifier        Verifier
	VerifyTimeout   time.Duration
	VerifySuccesses int
	VerifyInterval  time.Duration

	// SelfAppID is the appId of the identity appreg runs as; it never acts on it.
	SelfAppID string

	// FHIR is what fhirAccess may ask for; Access grants and removes the roles (nil: requests
	// with fhirAccess are refused, as no service is allowed); Prober proves a client reads
	// a service (nil: access is announced pending and never proven). A verify-access job first
	// runs AccessCheckDelay after the registration and gives up AccessVerifyTimeout after it.
	FHIR                FHIRPolicy
	Access              Access
	Prober              FHIRProber
	AccessCheckDelay    time.Duration
	AccessVerifyTimeout time.Duration

	// DeadLetters, when set, lets ScheduleRotations announce a "failed" event for every
	// dead-lettered command whose last delivery could not (it was cut off, or its publish failed).
	DeadLetters DeadLetters
	// DeadLetterLookback is how far back, by enqueue time, that sweep looks. The events topic's
	// duplicate detection must cover it, so a command announced twice is delivered once.
	DeadLetterLookback time.Duration

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

// Defaults are what a nil *Options, or a zero field, means. internal/config parses and documents
// the app settings from these values, so each default is written once.
var Defaults = Options{
	AppNamePrefix:       "appreg-",
	SecretNameSuffix:    "-client-secret",
	MaxLifetimeDays:     180,
	DefaultLifetimeDays: 90,
	RotateBefore:        720 * time.Hour,
	RetireAfter:         168 * time.Hour,
	OrphanAfter:         15 * time.Minute,
	MaxDeliveryCount:    10,
	RetryBudget:         30 * time.Minute,
	AttemptTimeout:      5 * time.Minute,
	DeadLetterLookback:  20 * time.Hour,
	ReplicationTimeout:  3 * time.Minute,
	RetryBase:           2 * time.Second,
	RetryMax:            20 * time.Second,
	StoreAttempts:       3,
	EditSpacing:         10 * time.Second,
	VerifyTimeout:       2 * time.Minute,
	VerifySuccesses:     8,
	VerifyInterval:      time.Second,
	AccessCheckDelay:    30 * time.Second,
	AccessVerifyTimeout: 15 * time.Minute,
	FHIR:                FHIRPolicy{Roles: []string{"FHIR Data Reader", "FHIR Data Writer", "FHIR Data Exporter"}},
}

// New returns a Service over the given adapters.
func New(dir Directory, store SecretStore, pub Publisher, opts *Options) *Service {
	var o Options
	if opts != nil {
		o = *opts
	}
	d := Defaults
	def := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	defInt := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	if o.AppNamePrefix == "" {
		o.AppNamePrefix = d.AppNamePrefix
	}
	if o.SecretNameSuffix == "" {
		o.SecretNameSuffix = d.SecretNameSuffix
	}
	defInt(&o.MaxLifetimeDays, d.MaxLifetimeDays)
	defInt(&o.DefaultLifetimeDays, d.DefaultLifetimeDays)
	def(&o.RotateBefore, d.RotateBefore)
	def(&o.RetireAfter, d.RetireAfter)
	def(&o.OrphanAfter, d.OrphanAfter)
	defInt(&o.MaxDeliveryCount, d.MaxDeliveryCount)
	def(&o.RetryBudget, d.RetryBudget)
	def(&o.AttemptTimeout, d.AttemptTimeout)
	def(&o.DeadLetterLookback, d.DeadLetterLookback)
	def(&o.ReplicationTimeout, d.ReplicationTimeout)
	def(&o.RetryBase, d.RetryBase)
	def(&o.RetryMax, d.RetryMax)
	defInt(&o.StoreAttempts, d.StoreAttempts)
	def(&o.EditSpacing, d.EditSpacing)
	def(&o.VerifyTimeout, d.VerifyTimeout)
	defInt(&o.VerifySuccesses, d.VerifySuccesses)
	def(&o.VerifyInterval, d.VerifyInterval)
	def(&o.AccessCheckDelay, d.AccessCheckDelay)
	def(&o.AccessVerifyTimeout, d.AccessVerifyTimeout)
	if o.FHIR.Roles == nil {
		o.FHIR.Roles = d.FHIR.Roles
	}
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
	return Limits{MaxLifetimeDays: s.opt.MaxLifetimeDays, DefaultLifetimeDays: s.opt.DefaultLifetimeDays, FHIR: s.opt.FHIR}
}

// UniqueName is the Graph uniqueName of a client's app.
func (s *Service) UniqueName(clientName string) string { return s.opt.AppNamePrefix + clientName }

// SecretName is the Key Vault secret name of a client's secret.
func (s *Service) SecretName(clientName string) string {
	return s.opt.SecretNamePrefix + clientName + s.opt.SecretNameSuffix
}

// retry runs fn until it succeeds, fails with an error that retrying cannot fix, or the budget
// is spent. Waits grow exponentially with full jitter, and honour a service's Retry-After.
func (s *Service) retry(ctx context.Context, budget time.Duration, attempts int, retryable func(error) bool, fn func() error) error {
	deadline := s.opt.Now().Add(budget)
	if end, ok := ctx.Value(windowKey{}).(time.Time); ok && (budget <= 0 || end.Before(deadline)) {
		deadline, budget = end, end.Sub(s.opt.Now())
		if budget <= 0 {
			budget = time.Nanosecond // the window is over: one try, no waiting
		}
	}
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

// shortHash is a stable 16-hex-digit digest, for ids derived from text of any length.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// publish sends an event, stamping it with the tenant and the time, and returns what it sent.
func (s *Service) publish(ctx context.Context, e Event) (Event, error) {
	if e.TenantID == "" {
		e.TenantID = s.opt.TenantID
	}
	if e.OccurredAt.IsZero() {
		e.OccurredAt = s.opt.Now().UTC()
	}
	if e.CommandID == "" && e.Type != EventRetired { // retire:<appId>:<keyId> is unique already
		e.CommandID, _ = ctx.Value(commandKey{}).(string)
	}
	if err := s.pub.Publish(ctx, e); err != nil {
		return e, err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "event published",
		slog.String("event", string(e.Type)), slog.String("requestId", e.RequestID),
		slog.String("clientName", e.ClientName), slog.String("appId", e.AppID), slog.String("keyId", e.KeyID))
	return e, nil
}
