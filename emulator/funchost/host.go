package funchost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// DefaultHostVersion is what funchost reports in X-Azure-Functions-HostVersion
// and User-Agent: a Functions 4.x host version string.
const DefaultHostVersion = "4.1041.200"

// Options configures a Host. A nil *Options, and every zero field, means the
// default.
type Options struct {
	Logger      *slog.Logger // default slog.Default()
	Clock       Clock        // default real time
	HostVersion string       // default DefaultHostVersion
	// Environ is the handler's base environment, before the app settings and
	// the host's variables; nil means funchost's own environment.
	Environ []string

	ReadyTimeout      time.Duration // for GET / to answer; default 60 s
	ReadyPollInterval time.Duration // default 100 ms
	RestartDelay      time.Duration // first restart backoff, doubling; default 1 s
	MaxRestartDelay   time.Duration // default 30 s
	// RestartResetAfter is how long a handler must have run for its next
	// failure to restart it after RestartDelay again; default 1 min.
	RestartResetAfter time.Duration
	// StopTimeout bounds how long a stop waits for in-flight invocations
	// before it cancels them (their messages are then abandoned); default 30 s.
	StopTimeout time.Duration

	// AcceptSession accepts the next session for a session-enabled function;
	// the default uses azservicebus with the function's connection.
	AcceptSession func(ctx context.Context, fn *Function) (SessionReceiver, error)
	// NewReceiver opens the receiver for a serviceBusTrigger function. The
	// default uses azservicebus with the function's connection.
	NewReceiver func(ctx context.Context, fn *Function) (Receiver, error)
	// OnInvocation is called after every invocation has been settled.
	OnInvocation func(Invocation)
	// OnHandler is called when the handler process starts, becomes ready or exits.
	OnHandler func(HandlerEvent)
}

func (o *Options) withDefaults() *Options {
	out := Options{}
	if o != nil {
		out = *o
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	if out.Clock == nil {
		out.Clock = realClock{}
	}
	if out.HostVersion == "" {
		out.HostVersion = DefaultHostVersion
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&out.ReadyTimeout, 60*time.Second)
	def(&out.ReadyPollInterval, 100*time.Millisecond)
	def(&out.RestartDelay, time.Second)
	def(&out.MaxRestartDelay, 30*time.Second)
	def(&out.RestartResetAfter, time.Minute)
	def(&out.StopTimeout, 30*time.Second)
	return &out
}

// Outcome is how an invocation ended.
type Outcome string

const (
	Completed Outcome = "completed" // Service Bus: succeeded, message completed
	Abandoned Outcome = "abandoned" // Service Bus: failed, message abandoned
	Succeeded Outcome = "succeeded" // timer: succeeded
	Failed    Outcome = "failed"    // timer: failed (logged only, as in the host)
)

// Invocation describes one finished invocation. It never carries the
// message body.
type Invocation struct {
	Function     string
	InvocationID string
	Trigger      string // "serviceBusTrigger" or "timerTrigger"
	// MessageID and DeliveryCount are set for Service Bus invocations.
	MessageID     string
	DeliveryCount uint32
	// IsPastDue is set for timer invocations.
	IsPastDue  bool
	StatusCode int // the handler's HTTP status; 0 if it never answered
	Duration   time.Duration
	Outcome    Outcome
	Err        error // why the invocation failed; nil on success
	SettleErr  error // why completing or abandoning the message failed
	Logs       []string
}

// Host runs one App: the handler process, a Service Bus listener per
// serviceBusTrigger function and a scheduler per timerTrigger function.
type Host struct {
	app    *App
	opts   *Options
	log    *slog.Logger
	clock  Clock
	worker *worker
	client *http.Client

	mu         sync.Mutex
	running    bool
	timersLive bool // FireTimer is served
	timers     map[string]chan fireRequest
}

// New returns a Host for app. opts may be nil.
func New(app *App, opts *Options) *Host {
	o := opts.withDefaults()
	h := &Host{app: app, opts: o, log: o.Logger, clock: o.Clock, timers: map[string]chan fireRequest{}}
	h.worker = newWorker(app, o, o.Logger)
	conns := app.Host.ServiceBus.MaxConcurrentCalls * max(1, len(app.Functions))
	h.client = &http.Client{Transport: &http.Transport{
		Proxy:               nil,  // the handler is on loopback; never send it through a proxy
		DisableCompression:  true, // the host's HttpClient sends no Accept-Encoding
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
	}}
	for _, fn := range app.Functions {
		if fn.Timer != nil {
			h.timers[fn.Name] = make(chan fireRequest)
		}
	}
	return h
}

// HandlerURL is the base URL the handler is called on, once Run has started it.
func (h *Host) HandlerURL() string { return h.worker.baseURL() }

// Run starts the handler, waits until it is ready, then runs every function
// until ctx ends. It then stops receiving, lets in-flight invocations finish
// (up to Options.StopTimeout), stops the handler and returns nil. It returns
// an error if the handler cannot be started or keeps dying, or if a Service
// Bus receiver cannot be opened.
func (h *Host) Run(ctx context.Context) error {
	h.mu.Lock()
	if h.running {
		h.mu.Unlock()
		return errors.New("funchost: Run called twice")
	}
	h.running = true
	h.mu.Unlock()

	for _, w := range h.app.Warnings {
		h.log.Warn("configuration", "warning", w)
	}
	if err := h.worker.pickPort(); err != nil {
		return err
	}

	// Three lifetimes: receiving stops first, invocations may run on until
	// drained, and the handler is stopped last.
	handlerCtx, stopHandler := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHandler()
	workerErr := make(chan error, 1)
	go func() { workerErr <- h.worker.run(handlerCtx) }()

	readyCtx, cancelReady := context.WithCancel(ctx)
	readyErr := make(chan error, 1)
	go func() { readyErr <- h.worker.waitReady(readyCtx) }()
	select {
	case err := <-readyErr:
		cancelReady()
		if err != nil { // ctx ended before the handler was up
			stopHandler()
			return <-workerErr
		}
	case err := <-workerErr: // the handler could not be started
		cancelReady()
		return err
	}

	recvCtx, stopReceiving := context.WithCancel(ctx)
	defer stopReceiving()
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	var pumps, work sync.WaitGroup
	var receivers []Receiver
	var runErr error
	newReceiver, accept := h.opts.NewReceiver, h.opts.AcceptSession
	var az *azureReceivers
	if newReceiver == nil || accept == nil {
		az = newAzureReceivers(h.log)
		if newReceiver == nil {
			newReceiver = az.open
		}
		if accept == nil {
			accept = az.acceptNext
		}
	}
	for _, fn := range h.app.Functions {
		switch {
		case fn.ServiceBus != nil && fn.ServiceBus.Sessions:
			pumps.Add(1)
			go func() {
				defer pumps.Done()
				h.sessionPump(recvCtx, workCtx, &work, fn, accept)
			}()
			h.log.Info("function listening", "function", fn.Name, "trigger", fn.TriggerType(),
				"entity", fn.ServiceBus.Entity(), "connection", fn.ServiceBus.Connection, "sessions", true,
				"maxConcurrentSessions", h.app.Host.ServiceBus.MaxConcurrentSessions,
				"sessionIdleTimeout", h.app.Host.ServiceBus.SessionIdleTimeout.String())
		case fn.ServiceBus != nil:
			r, err := newReceiver(recvCtx, fn)
			if err != nil {
				runErr = fmt.Errorf("function %s: opening receiver for %s: %w", fn.Name, fn.ServiceBus.Entity(), err)
				break
			}
			receivers = append(receivers, r)
			pumps.Add(1)
			go func() {
				defer pumps.Done()
				h.pump(recvCtx, workCtx, &work, fn, r)
			}()
			h.log.Info("function listening", "function", fn.Name, "trigger", fn.TriggerType(),
				"entity", fn.ServiceBus.Entity(), "connection", fn.ServiceBus.Connection,
				"maxConcurrentCalls", h.app.Host.ServiceBus.MaxConcurrentCalls)
		case fn.Timer != nil:
			work.Add(1)
			go func() {
				defer work.Done()
				h.runTimer(recvCtx, workCtx, fn)
			}()
			h.log.Info("function scheduled", "function", fn.Name, "trigger", fn.TriggerType(),
				"schedule", fn.Timer.Schedule.String(), "next", fn.Timer.Schedule.Next(h.clock.Now()).Format(time.RFC3339),
				"runOnStartup", fn.Timer.RunOnStartup, "useMonitor", fn.Timer.UseMonitor)
		}
		if runErr != nil {
			break
		}
	}
	h.mu.Lock()
	h.timersLive = true
	h.mu.Unlock()

	if runErr == nil {
		h.log.Info("host started", "functions", len(h.app.Functions), "handler", h.worker.baseURL())
		select {
		case <-ctx.Done():
			h.log.Info("stopping: no new messages; waiting for in-flight invocations", "timeout", h.opts.StopTimeout.String())
		case err := <-workerErr:
			runErr = err
			workerErr <- nil // the handler is gone; nothing left to stop
			h.log.Error("stopping: the handler cannot be kept running", "error", err)
		}
	}

	h.mu.Lock()
	h.timersLive = false
	h.mu.Unlock()
	stopReceiving()
	pumps.Wait()
	if !waitTimeout(&work, h.opts.StopTimeout) {
		h.log.Warn("in-flight invocations did not finish in time; cancelling them", "timeout", h.opts.StopTimeout.String())
		cancelWork()
		work.Wait()
	}
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 10*time.Second)
	for _, r := range receivers {
		if err := r.Close(closeCtx); err != nil {
			h.log.Warn("closing receiver", "error", err)
		}
	}
	if az != nil {
		az.close(closeCtx)
	}
	cancelClose()
	stopHandler()
	if err := <-workerErr; err != nil && runErr == nil {
		runErr = err
	}
	h.log.Info("host stopped")
	return runErr
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// report logs a finished invocation and passes it to OnInvocation.
func (h *Host) report(inv Invocation) {
	attrs := []any{
		"function", inv.Function, "invocationId", inv.InvocationID, "trigger", inv.Trigger,
	}
	if inv.Trigger == "serviceBusTrigger" {
		attrs = append(attrs, "messageId", inv.MessageID, "deliveryCount", inv.DeliveryCount)
	} else {
		attrs = append(attrs, "isPastDue", inv.IsPastDue)
	}
	attrs = append(attrs, "status", inv.StatusCode, "durationMs", durationMS(inv.Duration), "outcome", string(inv.Outcome))
	level := slog.LevelInfo
	if inv.Err != nil {
		attrs = append(attrs, "error", inv.Err.Error())
		level = slog.LevelWarn
	}
	if inv.SettleErr != nil {
		attrs = append(attrs, "settleError", inv.SettleErr.Error())
		level = slog.LevelWarn
	}
	h.log.Log(context.Background(), level, "invocation", attrs...)
	if h.opts.OnInvocation != nil {
		h.opts.OnInvocation(inv)
	}
}

// logHandlerLogs prints the Logs lines the handler returned, as the host
// logs them as the function's own output.
func (h *Host) logHandlerLogs(function, invocationID string, lines []string) {
	for _, l := range lines {
		h.log.Info("function log", "function", function, "invocationId", invocationID, "log", l)
	}
}
