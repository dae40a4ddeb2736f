package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"appreg/emulator/armemu"
	"appreg/emulator/azemu"
	"appreg/emulator/funchost"
	"appreg/internal/config"
	"appreg/internal/endpoints"
)

const runUsage = `Usage: azemu run [--dist dist] [--dir .run] [--examples examples] [--once] [--appreg PATH]

Runs the whole product on this machine, in the foreground, on free loopback ports:

  1. the local Azure (Entra ID, Microsoft Graph, Key Vault, Service Bus) in this process; it
     writes DIR/endpoints.json and DIR/ca.pem
  2. DIST/local.settings.json pointing the host and the handler at it; the handler signs in with
     the local managed-identity endpoint, as on App Service
  3. the Functions host simulator on DIST (the staged app: 'make package'), which starts the
     handler and delivers Service Bus messages and timer ticks to it
  4. every EXAMPLES/*.json is enqueued with the operator CLI ('appreg enqueue --wait') and its
     outcome printed (app id, Key Vault secret id and expiry; never the value); an example with
     fhirAccess waits on until its access is proven ('--wait-access'); then a rotation run: the
     ScheduleRotations timer fired now, and an on-demand rotation of the first example's client
     ('appreg rotate --wait')
  5. each example granted FHIR access reads the FHIR service as that client would: its secret
     from Key Vault, a token for the service, GET /Patient; the run prints how many resources came
     back (never the secret)

The local Azure runs the realistic profile unless --profile kind: Graph's replicas lag behind
writes by up to seconds and flap, as Azure's do, so registrations take seconds, not milliseconds.
The seed of that lag is printed; --seed repeats it.

With --once it then stops, exiting 0 only if every step succeeded. Otherwise it keeps serving
until Ctrl-C and prints the commands to use it from a second terminal. Logs go to
DIR/azemu.log, DIR/funchost.log and DIR/handler.log.

Flags:
`

// exampleRun is one example request and what became of it.
type exampleRun struct {
	file       string
	name       string
	requestID  string
	client     string
	fhir       bool // asks for FHIR access
	registered bool
}

// runStack is `azemu run`: the local Azure, the Functions host with the staged handler, and the
// operator CLI driving them, all in the foreground.
func (a *app) runStack(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("azemu run", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	l := &stack{a: a}
	fs.StringVar(&l.distArg, "dist", "dist", "the staged app: host.json, one folder per function, the handler")
	fs.StringVar(&l.dirArg, "dir", ".run", "where endpoints.json, ca.pem and the logs go")
	fs.StringVar(&l.examplesArg, "examples", "examples", "directory of example requests (*.json) to register")
	fs.BoolVar(&l.once, "once", false, "stop after the examples and the rotation run; exit 0 only if all succeeded")
	fs.DurationVar(&l.timeout, "timeout", 2*time.Minute, "how long to wait for each outcome")
	fs.StringVar(&l.appregArg, "appreg", "", "the appreg CLI to drive the stack with (default: the one next to azemu, else on PATH)")
	l.harsh.flags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), runUsage)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, a.stdout, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(a.stderr, "azemu run: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if err := l.harsh.apply(&l.emuOpts); err != nil {
		fmt.Fprintf(a.stderr, "azemu run: %v\n", err)
		return exitUsage
	}
	if err := l.run(ctx); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.err != nil {
				fmt.Fprintf(a.stderr, "azemu run: %v\n", ee.err)
			}
			return ee.code
		}
		fmt.Fprintf(a.stderr, "azemu run: %v\n", err)
		return exitRuntime
	}
	return exitOK
}

// exitError carries an exit status; err is nil when the reason is already on the terminal.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d: %v", e.code, e.err) }

func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func exitWith(code int) error { return &exitError{code: code} }

type stack struct {
	a                                       *app
	distArg, dirArg, examplesArg, appregArg string
	dist, dir                               string
	once                                    bool
	timeout                                 time.Duration
	harsh                                   harshness
	emuOpts                                 azemu.Options
	appreg, appregName                      string // the CLI's path, and how to print it
	examples                                []*exampleRun
	settings                                map[string]string
	emu                                     *azemu.Server
	host                                    *funchost.Host
	logs                                    []io.Closer
	azemuLog, hostLog, handlerLog           io.Writer
	outMu                                   sync.Mutex
}

func (l *stack) say(format string, args ...any) {
	l.outMu.Lock()
	defer l.outMu.Unlock()
	fmt.Fprintf(l.a.stdout, format+"\n", args...)
}

func (l *stack) print(s string) {
	l.outMu.Lock()
	defer l.outMu.Unlock()
	fmt.Fprint(l.a.stdout, s)
}

func (l *stack) run(ctx context.Context) (err error) {
	if err := l.prepare(ctx); err != nil {
		return err
	}
	defer l.closeLogs()

	l.say("starting local Azure…")
	l.emuOpts.Logger = slog.New(slog.NewJSONHandler(l.azemuLog, nil))
	l.emu, err = azemu.NewServer(&l.emuOpts)
	if err != nil {
		return fmt.Errorf("starting the local Azure: %w", err)
	}
	defer l.emu.Close()
	if err := l.emu.WriteDir(l.dir); err != nil {
		return fmt.Errorf("writing %s: %w", l.dir, err)
	}
	ep := l.emu.Endpoints()
	l.say("  Entra ID, Graph, Key Vault  %s", l.emu.URL())
	l.say("  Resource Manager            %s (subscription %s)", ep.ARMEndpoint, ep.SubscriptionID)
	for _, f := range ep.FHIRServices {
		l.say("  FHIR service                %s", f.URL)
	}
	l.say("  Service Bus (AMQP)          %s", l.emu.ServiceBus.Addr())
	l.say("  endpoints                   %s", filepath.Join(l.dirArg, endpoints.FileName))
	l.say("  %s", describeProfile(l.emu))

	if err := l.writeSettings(ep); err != nil {
		return err
	}
	l.say("starting the Functions host on %s…", l.distArg)
	app, err := funchost.Load(l.dist, l.settings)
	if err != nil {
		return fmt.Errorf("the staged app in %s is not valid:\n  %s", l.distArg, strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	handlerEvents := make(chan funchost.HandlerEvent, 16)
	l.host = funchost.New(app, &funchost.Options{
		Logger:      slog.New(&splitHandler{host: slog.NewTextHandler(l.hostLog, nil), handlerOut: l.handlerLog}),
		Environ:     l.baseEnv(),
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

	ok := l.registerExamples(ctx)
	ok = l.rotation(ctx) && ok
	ok = l.readFHIR(ctx) && ok
	if l.a.beforeStop != nil {
		l.a.beforeStop(ctx, l.emu)
	}
	if ctx.Err() != nil {
		l.say("interrupted; stopping…")
		return exitWith(exitRuntime)
	}
	if l.once {
		if ok {
			l.say("done: every example registered and rotated as expected, and FHIR read with a secret from Key Vault; stopping.")
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
// and not a handler that never comes up. The examples are judged by the CLI that will send them.
func (l *stack) prepare(ctx context.Context) error {
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
	if l.appreg, l.appregName, err = findAppreg(l.appregArg); err != nil {
		return usageErrorf("%w", err)
	}
	files, err := filepath.Glob(filepath.Join(l.examplesArg, "*.json"))
	if err != nil {
		return usageErrorf("--examples: %w", err)
	}
	if len(files) == 0 {
		return usageErrorf("no example requests (*.json) in %s", l.examplesArg)
	}
	sort.Strings(files)
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			return usageErrorf("%w", err)
		}
		var head struct {
			RequestID  string          `json:"requestId"`
			ClientName string          `json:"clientName"`
			FHIRAccess json.RawMessage `json:"fhirAccess"`
		}
		_ = json.Unmarshal(raw, &head) // a broken file is reported by validate below
		if head.RequestID == "" {
			head.RequestID = uuid.NewString()
		}
		code, _, errOut, err := l.runAppreg(ctx, nil, nil, "validate", "--file", file)
		if err != nil {
			return err
		}
		if code != 0 {
			fmt.Fprintf(l.a.stderr, "azemu run: example %s is not a valid request:\n%s", file, indent(errOut, "  "))
			return exitWith(exitUsage)
		}
		l.examples = append(l.examples, &exampleRun{
			file: file, name: filepath.Base(file), requestID: head.RequestID, client: head.ClientName,
			fhir: len(head.FHIRAccess) > 0 && string(head.FHIRAccess) != "null",
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

// findAppreg finds the operator CLI: the flag, else the binary next to azemu (make build puts
// both in bin/), else appreg on PATH. display is how the printed commands should invoke it.
func findAppreg(flagValue string) (path, display string, err error) {
	if flagValue != "" {
		abs, err := filepath.Abs(flagValue)
		if err != nil {
			return "", "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", "", fmt.Errorf("--appreg: %w", err)
		}
		return abs, flagValue, nil
	}
	if exe, err := os.Executable(); err == nil {
		next := filepath.Join(filepath.Dir(exe), "appreg")
		if _, err := os.Stat(next); err == nil {
			display = next
			if wd, err := os.Getwd(); err == nil {
				if rel, err := filepath.Rel(wd, next); err == nil && !strings.HasPrefix(rel, "..") {
					display = rel
					if !strings.ContainsRune(rel, filepath.Separator) {
						display = "." + string(filepath.Separator) + rel
					}
				}
			}
			return next, display, nil
		}
	}
	if p, err := exec.LookPath("appreg"); err == nil {
		return p, "appreg", nil
	}
	return "", "", errors.New("no appreg CLI next to azemu or on PATH: build it with 'make build', or pass --appreg")
}

// runAppreg runs the operator CLI against the local stack, as a person would from a second
// terminal, and returns its exit status and output. onStderr, if set, sees each line of its
// stderr as it comes.
func (l *stack) runAppreg(ctx context.Context, stdin io.Reader, onStderr func(string), args ...string) (int, string, string, error) {
	cmd := exec.CommandContext(ctx, l.appreg, args...)
	cmd.Env = l.baseEnv()
	if l.settings == nil {
		// Before the local Azure runs, examples are judged against the FHIR services it will
		// serve, whose ids are known in advance.
		cmd.Env = append(cmd.Env, config.EnvFHIRServices+"="+localFHIRService(), config.EnvFHIRDefaultService+"="+localFHIRService())
	}
	if l.settings != nil {
		cmd.Env = append(cmd.Env, "APPREG_ENDPOINTS="+filepath.Join(l.dir, endpoints.FileName))
		for _, k := range []string{config.EnvCommandQueue, config.EnvEventsTopic} {
			cmd.Env = append(cmd.Env, k+"="+l.settings[k])
		}
	}
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout = stdin, &out
	cmd.Stderr = &lineWriter{buf: &errOut, line: onStderr}
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errOut.String(), nil
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode(), out.String(), errOut.String(), nil
	case ctx.Err() != nil:
		return 0, "", "", exitWith(exitRuntime)
	}
	return 0, "", "", fmt.Errorf("running %s: %w", l.appregName, err)
}

func (l *stack) closeLogs() {
	for _, f := range l.logs {
		_ = f.Close()
	}
}

// writeSettings writes DIST/local.settings.json: the app settings the host and the handler get,
// all pointing at the local Azure. The handler signs in as the managed identity through the
// App Service endpoint (IDENTITY_ENDPOINT, IDENTITY_HEADER), as it does in Azure. The file holds
// the local Service Bus key, so it is owner-only; the key is never printed.
func (l *stack) writeSettings(ep endpoints.Endpoints) error {
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

		config.EnvCommandQueue:     "app-commands",
		config.EnvEventsTopic:      "app-registration-events",
		config.EnvRotationSchedule: "0 0 */6 * * *",
		// Graph refuses overlapping credential edits on one app; production spaces them by
		// 10 s to be safe. Locally a second is plenty, and the demo's on-demand rotation,
		// seconds after the registration, does not sit waiting.
		config.EnvEditSpacing: "1s",
		// Three sign-ins in a row, not eight: the local Entra's replicas agree within seconds.
		config.EnvVerifySuccesses: "3",
		config.EnvLogLevel:        "info",

		// FHIR role assignments through the local Resource Manager, on the local FHIR service.
		// The first proof of access two seconds after a registration: the local RBAC takes
		// seconds, not Azure's minutes, to reach the service.
		config.EnvARMEndpoint:        ep.ARMEndpoint,
		config.EnvARMAudience:        ep.ARMAudience,
		config.EnvFHIRServices:       ep.FHIRSetting(),
		config.EnvFHIRDefaultService: ep.FHIRServices[0].ID,
		config.EnvFHIRAccessDelay:    "2s",
	}
	if _, err := config.Load(func(k string) string { return values[k] }, config.Need{Tenant: true, Vault: true, ServiceBus: true}); err != nil {
		return fmt.Errorf("local settings: %w", err)
	}
	b, err := json.MarshalIndent(struct {
		IsEncrypted bool              `json:"IsEncrypted"`
		Values      map[string]string `json:"Values"`
	}{false, values}, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(l.dist, "local.settings.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return err
	}
	if err := os.Chmod(path, 0o600); err != nil { // WriteFile keeps an existing file's mode
		return err
	}
	l.settings = values
	return nil
}

// baseEnv is the environment the handler and the CLI start from, before their settings: only
// what a process needs to run. Inheriting this shell's AZURE_* or ServiceBusConnection* would
// let a developer's own settings leak into the local stack.
func (l *stack) baseEnv() []string {
	env := []string{}
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ", "LANG"} {
		if v := l.a.getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func (l *stack) waitReady(ctx context.Context, events <-chan funchost.HandlerEvent, hostDone chan error) error {
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

// registerExamples enqueues every example with `appreg enqueue --wait`, all at once, and prints
// each outcome as it arrives.
func (l *stack) registerExamples(ctx context.Context) bool {
	l.say("registering %d example request(s) from %s…", len(l.examples), l.examplesArg)
	var wg sync.WaitGroup
	for _, ex := range l.examples {
		wg.Go(func() {
			enqueued := func(line string) {
				if strings.HasPrefix(line, "enqueued request ") {
					l.say("  enqueued %s (%s, request %s)", ex.name, ex.client, ex.requestID)
				}
			}
			args := []string{"enqueue", "--file", ex.file, "--request-id", ex.requestID, "--wait", "--timeout", l.timeout.String()}
			if ex.fhir {
				args = append(args, "--wait-access")
			}
			code, out, errOut, err := l.runAppreg(ctx, nil, enqueued, args...)
			switch {
			case err != nil:
				l.say("  %s: not sent: %v", ex.name, err)
			case code == 0:
				ex.registered = true
				l.print(indent(out, "  "))
			case out != "":
				l.print(indent(out, "  ")) // a rejection or failure: its event says why
			default:
				l.print(indent(fmt.Sprintf("%s: no outcome (%s enqueue exited %d):\n%s", ex.name, l.appregName, code, indent(errOut, "  ")), "  "))
			}
		})
	}
	wg.Wait()
	ok := true
	for _, ex := range l.examples {
		ok = ok && ex.registered
	}
	return ok
}

// rotation shows the two ways a secret is rotated: the scheduler's scan (fired now rather than
// on its schedule) and an on-demand job for one client.
func (l *stack) rotation(ctx context.Context) bool {
	l.say("rotation: running the ScheduleRotations timer now (schedule %s)…", l.settings[config.EnvRotationSchedule])
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
		if ex.registered {
			target = ex.client
			break
		}
	}
	if target == "" {
		l.say("rotation: no registered client to rotate")
		return false
	}
	l.say("rotation: on-demand rotation of %s ('%s rotate %s --wait')…", target, l.appregName, target)
	code, out, errOut, err := l.runAppreg(ctx, nil, nil, "rotate", target, "--wait", "--timeout", l.timeout.String())
	if err != nil {
		l.say("  %v", err)
		return false
	}
	l.print(indent(out, "  "))
	if code != 0 {
		l.print(indent(errOut, "  "))
	}
	return ok && code == 0
}

// fireTimer runs a timer function now. The host serves FireTimer once its functions are
// listening, a moment after the handler is ready.
func (l *stack) fireTimer(ctx context.Context, name string) (funchost.Invocation, error) {
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

func (l *stack) instructions() {
	ep := filepath.Join(l.dir, endpoints.FileName)
	p := l.appregName
	example := filepath.Join(l.examplesArg, l.examples[0].name)
	l.say("")
	l.say("The local stack is running. In a second terminal:")
	l.say("")
	l.say("  APPREG_ENDPOINTS=%s %s enqueue --file %s --wait", ep, p, example)
	l.say("")
	l.say("or export it once and use any command:")
	l.say("")
	l.say("  export APPREG_ENDPOINTS=%s", ep)
	l.say("  %s enqueue --client-name my-new-client --lifetime-days 30 --requested-by \"$USER\" --wait", p)
	l.say("  %s enqueue --client-name my-fhir-reader --fhir-role \"FHIR Data Reader\" --wait-access", p)
	l.say("  %s rotate %s --wait", p, l.examples[0].client)
	l.say("  %s deregister my-new-client --wait", p)
	l.say("  %s events --follow", p)
	l.say("  %s dlq list", p)
	l.say("")
	l.say("Logs: %s, %s, %s", filepath.Join(l.dirArg, "azemu.log"), filepath.Join(l.dirArg, "funchost.log"), filepath.Join(l.dirArg, "handler.log"))
	l.say("Press Ctrl-C to stop.")
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if line != "" {
			b.WriteString(prefix + line)
		}
	}
	return b.String()
}

// lineWriter keeps what it is written and shows each complete line to line.
type lineWriter struct {
	buf     *bytes.Buffer
	line    func(string)
	pending []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if w.line == nil {
		return len(p), nil
	}
	w.pending = append(w.pending, p...)
	for {
		i := bytes.IndexByte(w.pending, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.line(string(w.pending[:i]))
		w.pending = w.pending[i+1:]
	}
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

// localFHIRService is the ARM id of the FHIR service the local Azure serves, known before it
// starts.
func localFHIRService() string {
	return azemu.FHIRServiceID(armemu.DefaultSubscriptionID, azemu.DefaultFHIRServices[0])
}
