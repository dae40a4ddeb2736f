package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"appreg/emulator/azemu"
	"appreg/emulator/funchost"
	"appreg/internal/config"
	"appreg/internal/endpoints"
	"appreg/internal/registrar"
	"appreg/internal/servicebus"
)

const localAbout = `
Runs the whole product on this machine, in the foreground, on free loopback ports:

  1. the local Azure (Entra ID, Microsoft Graph, Key Vault, Service Bus) in this process; it
     writes DIR/endpoints.json and DIR/ca.pem
  2. DIST/local.settings.json pointing the host and the handler at it; the handler signs in with
     the local managed-identity endpoint, as on App Service
  3. the Functions host simulator on DIST (the staged app: 'make package'), which starts the
     handler and delivers Service Bus messages and timer ticks to it
  4. every EXAMPLES/*.json is enqueued and its outcome printed (app id, Key Vault secret id and
     expiry; never the value); then a rotation run: the ScheduleRotations timer fired now, and an
     on-demand rotation of the first example's client

With --once it then stops, exiting 0 only if every step succeeded. Otherwise it keeps serving
until Ctrl-C and prints the commands to use it from a second terminal. Logs go to
DIR/azemu.log, DIR/funchost.log and DIR/handler.log.`

// localHooks let tests look inside a running `local`.
type localHooks struct {
	beforeStop func(ctx context.Context, emu *azemu.Server)
}

// exampleRun is one example request and what became of it.
type exampleRun struct {
	file      string
	name      string
	body      []byte
	requestID string
	client    string
	outcome   *registrar.Event
}

func (c *cli) local(ctx context.Context, args []string) error {
	f := c.flagSet("local", "local [--dist dist] [--dir .run] [--examples examples] [--once]", localAbout)
	dist := f.String("dist", "dist", "the staged app: host.json, one folder per function, the handler")
	dir := f.String("dir", ".run", "where endpoints.json, ca.pem and the logs go")
	examples := f.String("examples", "examples", "directory of example requests (*.json) to register")
	once := f.Bool("once", false, "stop after the examples and the rotation run; exit 0 only if all succeeded")
	timeout := f.Duration("timeout", 2*time.Minute, "how long to wait for each outcome")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q", pos[0])
	}
	l := &localRun{c: c, distArg: *dist, dirArg: *dir, examplesArg: *examples, once: *once, timeout: *timeout}
	return l.run(ctx)
}

type localRun struct {
	c                             *cli
	distArg, dirArg, examplesArg  string
	dist, dir                     string
	once                          bool
	timeout                       time.Duration
	examples                      []*exampleRun
	emu                           *azemu.Server
	bus                           *bus
	host                          *funchost.Host
	logs                          []io.Closer
	azemuLog, hostLog, handlerLog io.Writer
}

func (l *localRun) say(format string, args ...any) { fmt.Fprintf(l.c.stdout, format+"\n", args...) }

func (l *localRun) run(ctx context.Context) (err error) {
	if err := l.prepare(); err != nil {
		return err
	}
	defer l.closeLogs()

	l.say("starting local Azure…")
	l.emu, err = azemu.NewServer(&azemu.Options{Logger: slog.New(slog.NewJSONHandler(l.azemuLog, nil))})
	if err != nil {
		return fmt.Errorf("starting the local Azure: %w", err)
	}
	defer l.emu.Close()
	if err := l.emu.WriteDir(l.dir); err != nil {
		return fmt.Errorf("writing %s: %w", l.dir, err)
	}
	ep := l.emu.Endpoints()
	l.say("  Entra ID, Graph, Key Vault  %s", l.emu.URL())
	l.say("  Service Bus (AMQP)          %s", l.emu.ServiceBus.Addr())
	l.say("  endpoints                   %s", filepath.Join(l.dirArg, "endpoints.json"))

	settings, cfg, err := l.writeSettings(ep)
	if err != nil {
		return err
	}
	l.say("starting the Functions host on %s…", l.distArg)
	app, err := funchost.Load(l.dist, settings)
	if err != nil {
		return fmt.Errorf("the staged app in %s is not valid:\n  %s", l.distArg, strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	handlerEvents := make(chan funchost.HandlerEvent, 16)
	l.host = funchost.New(app, &funchost.Options{
		Logger:      slog.New(&splitHandler{host: slog.NewTextHandler(l.hostLog, nil), handlerOut: l.handlerLog}),
		Environ:     l.handlerBaseEnv(),
		StopTimeout: 10 * time.Second,
		OnHandler: func(ev funchost.HandlerEvent) {
			select {
			case handlerEvents <- ev:
			default:
			}
		},
	})
	// The host gets its own context so that, on Ctrl-C, it is stopped in order: host and
	// handler first, then the local Azure they talk to.
	hostCtx, stopHost := context.WithCancel(context.WithoutCancel(ctx))
	hostDone := make(chan error, 1)
	go func() { hostDone <- l.host.Run(hostCtx) }()
	defer func() {
		stopHost()
		if herr := <-hostDone; herr != nil && err == nil {
			err = fmt.Errorf("the Functions host: %w (see %s)", herr, filepath.Join(l.dirArg, "funchost.log"))
		}
	}()
	if err := l.waitReady(ctx, handlerEvents, hostDone); err != nil {
		return err
	}

	client, err := servicebus.NewClient(servicebus.Connection{ConnectionString: ep.ServiceBusConnectionString})
	if err != nil {
		return err
	}
	l.bus = &bus{client: client, cfg: cfg, subscription: "appreg"}
	defer l.bus.close()

	ok := l.registerExamples(ctx)
	ok = l.rotation(ctx) && ok
	if l.c.hooks.beforeStop != nil {
		l.c.hooks.beforeStop(ctx, l.emu)
	}
	if ctx.Err() != nil {
		l.say("interrupted; stopping…")
		return exitWith(exitRuntime)
	}
	if l.once {
		if ok {
			l.say("done: every example registered and rotated as expected; stopping.")
			return nil
		}
		l.say("FAILED: not every step succeeded (logs in %s); stopping.", l.dirArg)
		return exitWith(exitRuntime)
	}
	l.instructions()
	select {
	case <-ctx.Done():
		l.say("stopping…")
	case herr := <-hostDone:
		hostDone <- herr // for the deferred stop
		return fmt.Errorf("the Functions host stopped: %v (see %s)", herr, filepath.Join(l.dirArg, "funchost.log"))
	}
	return nil
}

// prepare checks the inputs before anything starts, so a missing build is a clear usage error
// and not a handler that never comes up.
func (l *localRun) prepare() error {
	var err error
	if l.dist, err = filepath.Abs(l.distArg); err != nil {
		return err
	}
	if l.dir, err = filepath.Abs(l.dirArg); err != nil {
		return err
	}
	for _, need := range []string{"host.json", "handler"} {
		if _, err := os.Stat(filepath.Join(l.dist, need)); err != nil {
			return usageErrorf("%s has no %s: stage the app first with 'make package' (or use 'make run')", l.distArg, need)
		}
	}
	files, err := filepath.Glob(filepath.Join(l.examplesArg, "*.json"))
	if err != nil {
		return usageErrorf("--examples: %w", err)
	}
	if len(files) == 0 {
		return usageErrorf("no example requests (*.json) in %s", l.examplesArg)
	}
	sort.Strings(files)
	lim := registrar.Limits{MaxLifetimeDays: 180, DefaultLifetimeDays: 90}
	for _, file := range files {
		raw, err := l.c.readFile(file)
		if err != nil {
			return usageErrorf("%w", err)
		}
		body := l.c.withRequestID(raw, "")
		reg, reasons := registrar.ParseRegistration(body, lim)
		if len(reasons) > 0 {
			fmt.Fprintf(l.c.stderr, "%s local: example %s is not a valid request:\n", l.c.prog, file)
			printReasons(l.c.stderr, reasons)
			return exitWith(exitUsage)
		}
		l.examples = append(l.examples, &exampleRun{
			file: file, name: filepath.Base(file), body: body, requestID: reg.RequestID, client: reg.ClientName,
		})
	}
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return err
	}
	open := func(name string) (io.Writer, error) {
		f, err := os.OpenFile(filepath.Join(l.dir, name), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, err
		}
		l.logs = append(l.logs, f)
		return &lockedWriter{w: f}, nil
	}
	if l.azemuLog, err = open("azemu.log"); err != nil {
		return err
	}
	if l.hostLog, err = open("funchost.log"); err != nil {
		return err
	}
	l.handlerLog, err = open("handler.log")
	return err
}

func (l *localRun) closeLogs() {
	for _, f := range l.logs {
		_ = f.Close()
	}
}

// writeSettings writes DIST/local.settings.json: the app settings the host and the handler get,
// all pointing at the local Azure. The handler signs in as the managed identity through the
// App Service endpoint (IDENTITY_ENDPOINT, IDENTITY_HEADER), as it does in Azure. The file holds
// the local Service Bus key, so it is owner-only; the key is never printed.
func (l *localRun) writeSettings(ep endpoints.Endpoints) (map[string]string, config.Config, error) {
	values := map[string]string{
		"FUNCTIONS_WORKER_RUNTIME": "custom",
		"AzureWebJobsStorage":      "",

		config.EnvTenantID:      ep.TenantID,
		config.EnvClientID:      ep.ManagedIdentity.ClientID,
		"IDENTITY_ENDPOINT":     ep.ManagedIdentity.Endpoint,
		"IDENTITY_HEADER":       ep.ManagedIdentity.Header,
		config.EnvAuthorityHost: ep.AuthorityHost,
		config.EnvGraphBaseURL:  ep.GraphBaseURL,
		config.EnvKeyVaultURL:   ep.KeyVaultURL,
		config.EnvCAFile:        filepath.Join(l.dir, "ca.pem"),
		config.EnvSBConnection:  ep.ServiceBusConnectionString,

		config.EnvRegistrationQueue: "app-registrations",
		config.EnvRotationQueue:     "secret-rotations",
		config.EnvEventsTopic:       "app-registration-events",
		config.EnvRotationSchedule:  "0 0 */6 * * *",
		// Graph refuses overlapping credential edits on one app; production spaces them by
		// 10 s to be safe. Locally a second is plenty, and the demo's on-demand rotation,
		// seconds after the registration, does not sit waiting.
		config.EnvEditSpacing: "1s",
		config.EnvLogLevel:    "info",
	}
	cfg, err := config.Load(func(k string) string { return values[k] }, config.Need{Tenant: true, Vault: true, ServiceBus: true})
	if err != nil {
		return nil, cfg, fmt.Errorf("local settings: %w", err)
	}
	b, err := json.MarshalIndent(struct {
		IsEncrypted bool              `json:"IsEncrypted"`
		Values      map[string]string `json:"Values"`
	}{false, values}, "", "  ")
	if err != nil {
		return nil, cfg, err
	}
	path := filepath.Join(l.dist, "local.settings.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return nil, cfg, err
	}
	if err := os.Chmod(path, 0o600); err != nil { // WriteFile keeps an existing file's mode
		return nil, cfg, err
	}
	return values, cfg, nil
}

// handlerBaseEnv is the environment the handler starts from, before the app settings: only
// what a process needs to run. Inheriting this shell's AZURE_* or ServiceBusConnection* would
// let a developer's own settings leak into the local handler.
func (l *localRun) handlerBaseEnv() []string {
	env := []string{}
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ", "LANG"} {
		if v := l.c.getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func (l *localRun) waitReady(ctx context.Context, events <-chan funchost.HandlerEvent, hostDone chan error) error {
	deadline := time.NewTimer(90 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case ev := <-events:
			switch ev.Kind {
			case funchost.HandlerReady:
				l.say("handler ready (pid %d, port %d)", ev.PID, ev.Port)
				return nil
			case funchost.HandlerExited:
				if ev.Err != nil {
					l.say("handler exited: %v (see %s)", ev.Err, filepath.Join(l.dirArg, "handler.log"))
				}
			}
		case herr := <-hostDone:
			hostDone <- herr
			return fmt.Errorf("the Functions host could not start the handler: %v (see %s and %s)", herr,
				filepath.Join(l.dirArg, "funchost.log"), filepath.Join(l.dirArg, "handler.log"))
		case <-deadline.C:
			return fmt.Errorf("the handler did not become ready in 90s (see %s)", filepath.Join(l.dirArg, "handler.log"))
		case <-ctx.Done():
			return exitWith(exitRuntime)
		}
	}
}

// registerExamples enqueues every example and prints each outcome as it arrives.
func (l *localRun) registerExamples(ctx context.Context) bool {
	w, err := l.bus.watch()
	if err != nil {
		l.say("  cannot read events: %v", err)
		return false
	}
	defer w.close()
	if _, err := w.poll(ctx); err != nil { // start after anything already there
		l.say("  cannot read events: %v", err)
		return false
	}
	l.say("registering %d example request(s) from %s…", len(l.examples), l.examplesArg)
	byID := map[string]*exampleRun{}
	for _, ex := range l.examples {
		err := l.bus.sendJSON(ctx, l.bus.cfg.RegistrationQueue, ex.requestID, ex.body, map[string]any{"clientName": ex.client})
		if err != nil {
			l.say("  %s: not sent: %v", ex.name, err)
			continue
		}
		byID[ex.requestID] = ex
		l.say("  enqueued %s (%s, request %s)", ex.name, ex.client, ex.requestID)
	}
	pending := len(byID)
	deadline := time.Now().Add(l.timeout)
	for pending > 0 {
		_, err := w.wait(ctx, l.c.poll, deadline, func(e seenEvent) bool {
			ex := byID[e.Event.RequestID]
			if ex == nil || ex.outcome != nil || !terminal(e.Event.Type) {
				return false
			}
			ev := e.Event
			ex.outcome = &ev
			pending--
			fmt.Fprint(l.c.stdout, indent(outcomeText(ev), "  "))
			return pending == 0
		})
		if err != nil {
			for _, ex := range l.examples {
				if byID[ex.requestID] != nil && ex.outcome == nil {
					l.say("  %s: no outcome: %v", ex.name, err)
				}
			}
			break
		}
	}
	ok := true
	for _, ex := range l.examples {
		ok = ok && ex.outcome != nil && ex.outcome.Type == registrar.EventRegistered
	}
	return ok
}

// rotation shows the two ways a secret is rotated: the scheduler's scan (fired now rather than
// on its schedule) and an on-demand job for one client.
func (l *localRun) rotation(ctx context.Context) bool {
	l.say("rotation: running the ScheduleRotations timer now (schedule %s)…", l.bus.cfg.RotationSchedule)
	ok := true
	inv, err := l.fireTimer(ctx, "ScheduleRotations")
	switch {
	case err != nil:
		l.say("  could not run it: %v", err)
		ok = false
	default:
		for _, line := range inv.Logs {
			l.say("  %s", line)
		}
		if inv.Outcome != funchost.Succeeded {
			l.say("  the run failed: %v (see %s)", inv.Err, filepath.Join(l.dirArg, "handler.log"))
			ok = false
		}
	}

	var target string
	for _, ex := range l.examples {
		if ex.outcome != nil && ex.outcome.Type == registrar.EventRegistered {
			target = ex.client
			break
		}
	}
	if target == "" {
		l.say("rotation: no registered client to rotate")
		return false
	}
	l.say("rotation: on-demand rotation of %s (what '%s rotate %s' sends)…", target, l.c.prog, target)
	job := registrar.RotationJob{ClientName: target, Reason: registrar.ReasonOnDemand, RequestedAt: l.c.now().UTC()}
	var out strings.Builder
	sub := *l.c
	sub.stdout, sub.stderr = &out, io.Discard
	err = sub.sendRotation(ctx, l.bus, job, true, l.timeout, false)
	fmt.Fprint(l.c.stdout, indent(out.String(), "  "))
	if ee := (*exitError)(nil); err != nil && (!errors.As(err, &ee) || !ee.printed) {
		l.say("  %v", err) // a rejection or failure is in the output already
	}
	return ok && err == nil
}

// fireTimer runs a timer function now. The host serves FireTimer once its functions are
// listening, a moment after the handler is ready.
func (l *localRun) fireTimer(ctx context.Context, name string) (funchost.Invocation, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		tctx, cancel := context.WithTimeout(ctx, l.timeout)
		inv, err := l.host.FireTimer(tctx, name)
		cancel()
		if err == nil || !errors.Is(err, funchost.ErrNotRunning) || time.Now().After(deadline) {
			return inv, err
		}
		select {
		case <-ctx.Done():
			return inv, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (l *localRun) instructions() {
	endpoints := filepath.Join(l.dir, "endpoints.json")
	p := l.c.prog
	example := filepath.Join(l.examplesArg, l.examples[0].name)
	l.say("")
	l.say("The local stack is running. In a second terminal:")
	l.say("")
	l.say("  APPREG_ENDPOINTS=%s %s enqueue --file %s --wait", endpoints, p, example)
	l.say("")
	l.say("or export it once and use any command:")
	l.say("")
	l.say("  export APPREG_ENDPOINTS=%s", endpoints)
	l.say("  %s enqueue --client-name my-new-client --lifetime-days 30 --requested-by \"$USER\" --wait", p)
	l.say("  %s rotate %s --wait", p, l.examples[0].client)
	l.say("  %s events --follow", p)
	l.say("  %s dlq list", p)
	l.say("")
	l.say("Logs: %s, %s, %s", filepath.Join(l.dirArg, "azemu.log"), filepath.Join(l.dirArg, "funchost.log"), filepath.Join(l.dirArg, "handler.log"))
	l.say("Press Ctrl-C to stop.")
}

// outcomeText is printOutcome into a string.
func outcomeText(e registrar.Event) string {
	var b strings.Builder
	printOutcome(&b, e)
	return b.String()
}

// splitHandler sends the handler's own output (which funchost forwards as "handler output"
// records) to handler.log, line for line, and everything else to funchost's log.
type splitHandler struct {
	host       slog.Handler
	handlerOut io.Writer
}

func (s *splitHandler) Enabled(ctx context.Context, l slog.Level) bool { return true }

func (s *splitHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "handler output" {
		var line string
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "line" {
				line = a.Value.String()
				return false
			}
			return true
		})
		_, err := io.WriteString(s.handlerOut, line+"\n")
		return err
	}
	if !s.host.Enabled(ctx, r.Level) {
		return nil
	}
	return s.host.Handle(ctx, r)
}

func (s *splitHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &splitHandler{host: s.host.WithAttrs(attrs), handlerOut: s.handlerOut}
}

func (s *splitHandler) WithGroup(name string) slog.Handler {
	return &splitHandler{host: s.host.WithGroup(name), handlerOut: s.handlerOut}
}

// lockedWriter serialises writes from several goroutines to one log file.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
