package servicebusemu

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"appreg/emulator/emu"
	"appreg/emulator/internal/token"
	"appreg/emulator/servicebusemu/internal/amqp"
)

// Options configure a Server. The zero value is usable.
type Options struct {
	Addr    string           // listen address; "" = 127.0.0.1:0
	Config  *Config          // entities; nil = DefaultConfig()
	KeyName string           // SAS key name; "" = "RootManageSharedAccessKey"
	Key     string           // SAS key; "" = a random key (see ConnectionString)
	Logger  *slog.Logger     // nil = discard
	Trace   io.Writer        // opt-in frame trace; nil = off
	Now     func() time.Time // nil = time.Now; drives lock expiry, TTL and scheduling
	// IdleTimeout is the idle-timeout the emulator advertises and enforces:
	// a connection that sends nothing for this long is closed. 0 = 60 s.
	IdleTimeout time.Duration
	// Issuer verifies Entra (jwt) CBS tokens: signature, lifetime, audience
	// https://servicebus.azure.net and, when TenantID is set, the tenant.
	// nil: they are accepted unverified and hold every right.
	Issuer   *token.Issuer
	TenantID string
	// Authorizer decides what a verified Entra token's principal may do,
	// at the scopes below ResourceID (the namespace's ARM id); nil: every
	// right, as with a SAS key.
	Authorizer Authorizer
	ResourceID string
}

// Server is a running emulator. It listens from NewServer until Close. Its embedded Controls
// are the shared test controls (see package emu), also served by Handler under
// /_emu/servicebus/.
type Server struct {
	*emu.Controls
	controls http.Handler

	ln          net.Listener
	broker      *broker
	log         *slog.Logger
	tracer      *tracer
	now         func() time.Time
	keyName     string
	key         string
	issuer      *token.Issuer
	tenantID    string
	authz       Authorizer
	resourceID  string
	idleTimeout time.Duration
	quit        chan struct{}
	wg          sync.WaitGroup
	panics      atomic.Int64 // connections lost to a bug; tests assert zero

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
}

// sweepInterval is how often lock expiry, TTL and schedules are checked.
const sweepInterval = 10 * time.Millisecond

// NewServer starts an emulator listening on opts.Addr.
func NewServer(opts *Options) (*Server, error) {
	if opts == nil {
		opts = &Options{}
	}
	cfg := opts.Config
	if cfg == nil {
		cfg = DefaultConfig()
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("service bus emulator: %w", err)
	}
	s := &Server{
		log: opts.Logger, now: opts.Now, keyName: opts.KeyName, key: opts.Key,
		issuer: opts.Issuer, tenantID: strings.ToLower(opts.TenantID), authz: opts.Authorizer, resourceID: strings.TrimSuffix(opts.ResourceID, "/"),
		idleTimeout: opts.IdleTimeout, quit: make(chan struct{}), conns: map[*conn]struct{}{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.keyName == "" {
		s.keyName = "RootManageSharedAccessKey"
	}
	if s.key == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		s.key = base64.StdEncoding.EncodeToString(b)
	}
	if s.idleTimeout <= 0 {
		s.idleTimeout = 60 * time.Second
	}
	if opts.Trace != nil {
		s.tracer = &tracer{w: opts.Trace, now: s.now}
	}
	s.broker = newBroker(cfg, s.now)
	s.Controls = emu.New(emu.Config{
		Service: "servicebus", Operations: operations, ResetData: s.broker.reset,
		State: func() any { return s.State() },
	})
	s.controls = emu.Handler(s.Controls, s.controlRoutes()...)
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("service bus emulator: %w", err)
	}
	s.ln = ln
	s.wg.Add(2)
	go s.accept()
	go s.sweep()
	s.log.Info("service bus emulator listening", "addr", s.Addr())
	return s, nil
}

// Addr returns the listening address, "127.0.0.1:port".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// ConnectionString returns a connection string for the SDKs, with
// UseDevelopmentEmulator=true so that they use plain TCP.
func (s *Server) ConnectionString() string {
	return fmt.Sprintf("Endpoint=sb://%s;SharedAccessKeyName=%s;SharedAccessKey=%s;UseDevelopmentEmulator=true",
		s.Addr(), s.keyName, s.key)
}

// Close stops accepting, closes every connection with amqp:connection:forced
// and waits for them to finish.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.quit)
	s.mu.Unlock()
	err := s.ln.Close()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		// A client that does not read blocks our close frame; cut it off.
		s.DropConnections()
		<-done
	}
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("accept", "err", err)
			}
			return
		}
		if s.serveConn(nc) == nil {
			return
		}
	}
}

// serveConn runs one client connection in its own goroutine. It returns nil
// if the server is closed.
func (s *Server) serveConn(nc net.Conn) *conn {
	c := &conn{
		srv: s, nc: nc, log: s.log.With("remote", nc.RemoteAddr().String()),
		w:      bufio.NewWriterSize(nc, 32*1024),
		frames: make(chan frameIn, 16), wakeCh: make(chan struct{}, 1), ctrl: make(chan func()),
		done: make(chan struct{}), sessions: map[uint16]*session{}, replyLinks: map[string]*link{},
		claims: map[string]claim{}, started: make(chan struct{}),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return nil
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		c.serve()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	return c
}

func (s *Server) sweep() {
	defer s.wg.Done()
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.broker.sweep()
		case <-s.quit:
			return
		}
	}
}

func (s *Server) connList() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// run executes fn on c's goroutine and waits for it, unless c has ended.
func (c *conn) run(fn func()) {
	select {
	case <-c.started:
	default:
		return // still in the handshake: it has no links yet
	}
	finished := make(chan struct{})
	select {
	case c.ctrl <- func() { fn(); close(finished) }:
		select {
		case <-finished:
		case <-c.done:
		}
	case <-c.done:
	}
}

// ---- test controls ----

// DropConnections cuts every client connection without an AMQP close, as a
// network failure would. The SDKs are expected to reconnect.
func (s *Server) DropConnections() {
	for _, c := range s.connList() {
		c.nc.Close()
	}
}

// DetachLinks detaches every client link attached to entity (a queue, topic,
// subscription or dead-letter path) with an AMQP error of the given
// condition, for example "amqp:link:detach-forced".
func (s *Server) DetachLinks(entity string, condition string) error {
	e, err := s.broker.lookup(entity)
	if err != nil {
		return err
	}
	for _, c := range s.connList() {
		c.run(func() {
			for _, sess := range c.sessions {
				for _, l := range sess.links {
					if l.entity == e && (l.kind == linkSend || l.kind == linkRecv) {
						c.detachWith(l, &amqp.Error{Condition: amqp.Symbol(condition), Description: "detached by the emulator's test control"})
					}
				}
			}
			_ = c.flush()
		})
	}
	return nil
}

// ExpireLocks ends every message lock held on entity now, as if its
// LockDuration had passed: each message's delivery count goes up and it is
// redelivered or dead-lettered.
func (s *Server) ExpireLocks(entity string) error { return s.broker.expireLocks(entity) }

// Counts counts the messages of an entity: active (including locked),
// scheduled, deferred, locked, and those in its dead-letter queue.
func (s *Server) Counts(entity string) (Counts, error) { return s.broker.counts(entity) }

// DeadLetters lists the dead-lettered messages of an entity (or of the given
// dead-letter path) with their reasons.
func (s *Server) DeadLetters(entity string) ([]DeadLetter, error) {
	return s.broker.deadLetters(entity)
}
