// Command handler is appreg's Azure Functions custom handler. The Functions host starts it with
// FUNCTIONS_CUSTOMHANDLER_PORT and the app settings in its environment, probes GET /, and POSTs
// one invocation per command-queue message to /ClientCommand and per timer tick to
// /ScheduleRotations. It listens on 127.0.0.1 only: nothing but the host may call it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"appreg/internal/arm"
	"appreg/internal/azauth"
	"appreg/internal/config"
	"appreg/internal/graph"
	"appreg/internal/keyvault"
	"appreg/internal/registrar"
	"appreg/internal/servicebus"
)

func main() {
	// One P unless GOMAXPROCS says otherwise. The handler waits on Azure far more than it computes
	// (a new client costs milliseconds of CPU over seconds of requests), and with more Ps every
	// response that wakes a goroutine wakes an idle thread too: on 2 cores that cost a fifth of
	// the handler's CPU, for no throughput Graph's write limit would let it use. The Functions
	// host shares the instance and keeps the other cores.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// preflightTimeout bounds each preflight check.
const preflightTimeout = 20 * time.Second

const usage = `Usage: handler [--check [--offline] [--json]]

appreg's Azure Functions custom handler. The Functions host (or funchost) starts it; it reads its
settings from the environment, listens on 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT and serves
GET / (readiness), POST /ClientCommand and /ScheduleRotations.

Flags:
  --check     validate the settings, then check with the configured identity, without side
              effects, each call the handler makes: tokens, a Graph read, a Key Vault list,
              Service Bus sends and a dead-letter peek; one line per check, with the fix for a
              failure (exit 0 all passed, 1 a check failed, 2 invalid settings)
  --offline   with --check: validate the settings only
  --json      with --check: print the results as JSON
  --help      show this help

Settings (environment variables):
`

// run is main without the process: tests drive it with their own environment and context.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("handler", flag.ContinueOnError)
	fs.SetOutput(stderr)
	check := fs.Bool("check", false, "validate the settings, then check with the configured identity what the handler will call; exit")
	offline := fs.Bool("offline", false, "with --check: validate the settings only, calling nothing")
	asJSON := fs.Bool("json", false, "with --check: print the results as JSON")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		config.Help(stderr)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg, err := config.Load(getenv, config.Need{Tenant: true, Vault: true, Port: !*check, ServiceBus: true})
	if err != nil {
		fmt.Fprintf(stderr, "handler: invalid settings:\n%v\n", err)
		return 2
	}
	if *check && *offline {
		fmt.Fprintln(stdout, "settings are valid")
		return 0
	}
	logOut := stdout
	if *check {
		logOut = io.Discard // the check's own lines are its output
	}
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel}))

	app, err := wire(ctx, cfg, log, nil)
	if err != nil {
		if *check {
			fmt.Fprintf(stderr, "handler: %v\n", err)
		}
		log.Error("start-up failed", slog.Any("error", err))
		return 1
	}
	defer app.close()
	if *check {
		results := preflight(ctx, app.checks, preflightTimeout)
		if *asJSON {
			_ = json.NewEncoder(stdout).Encode(map[string]any{"settingsValid": true, "checks": results})
		} else {
			fmt.Fprintln(stdout, "settings are valid")
		}
		failed := 0
		for _, r := range results {
			if !r.OK {
				failed++
			}
		}
		if !*asJSON {
			printPreflight(stdout, results)
		}
		if failed > 0 {
			return 1
		}
		return 0
	}
	// The same checks at every start, in the log: a Function App's operator cannot run --check
	// inside the app, but reads what it logs.
	go logPreflight(log, preflight(ctx, app.checks, preflightTimeout))

	// Loopback only: the host calls 127.0.0.1, and nothing else should be able to.
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)))
	if err != nil {
		log.Error("listen failed", slog.Any("error", err))
		return 1
	}
	if err := serve(ctx, ln, app.svc, log); err != nil {
		log.Error("server failed", slog.Any("error", err))
		return 1
	}
	return 0
}

// serve runs the HTTP server until ctx ends, then lets in-flight invocations finish: a message
// whose work is cut off would be redelivered anyway, but a clean finish avoids the retry.
func serve(ctx context.Context, ln net.Listener, svc service, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           (&server{svc: svc, log: log}).routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		// Invocations may legitimately run for minutes (replication waits); the host's
		// functionTimeout bounds them, not the server.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("handler listening", slog.String("addr", ln.Addr().String()))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down; waiting for in-flight invocations")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// wiring lets end-to-end tests observe the wire and steer time; nil means production.
type wiring struct {
	HTTPClient    *http.Client             // nil: one trusting the system roots and APPREG_CA_FILE
	KeyVaultRetry policy.RetryOptions      // zero: azcore's defaults
	Registrar     func(*registrar.Options) // adjusts the domain's options (clock, backoff)
}

// wire builds the SDK clients once, at start, and the domain service over them. One HTTP client
// serves azidentity, kiota and azsecrets, so the process keeps one connection pool.
// wired is the handler's domain service over its adapters, the preflight checks of those
// adapters, and how to close them.
type wired struct {
	svc    *registrar.Service
	checks []check
	close  func()
}

func wire(ctx context.Context, cfg config.Config, log *slog.Logger, w *wiring) (*wired, error) {
	if w == nil {
		w = &wiring{}
	}
	httpClient := w.HTTPClient
	if httpClient == nil {
		var err error
		if httpClient, err = azauth.NewHTTPClient(cfg.CAFile, nil); err != nil {
			return nil, fmt.Errorf("setting %s: %w", config.EnvCAFile, err)
		}
	}
	credOpts := azauth.Options{
		TenantID: cfg.TenantID, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		AuthorityHost: cfg.AuthorityHost, ManagedIdentity: cfg.ClientSecret == "", Transport: httpClient,
	}
	cred, err := azauth.NewCredential(credOpts)
	if err != nil {
		return nil, err
	}
	dir, err := graph.New(cred, &graph.Options{BaseURL: cfg.GraphBaseURL, HTTPClient: httpClient, Logger: log})
	if err != nil {
		return nil, err
	}
	store, err := keyvault.New(cfg.KeyVaultURL, cred, &keyvault.Options{Transport: httpClient, Retry: w.KeyVaultRetry, Logger: log})
	if err != nil {
		return nil, err
	}
	sb, err := servicebus.NewClient(servicebus.Connection{
		Namespace: cfg.ServiceBusNamespace, ConnectionString: cfg.ServiceBusConnectionString, Credential: cred,
	})
	if err != nil {
		return nil, err
	}
	pub, err := servicebus.NewPublisher(sb, cfg.EventsTopic, cfg.CommandQueue, log)
	if err != nil {
		return nil, err
	}
	closeFn := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = pub.Close(ctx)
		_ = sb.Close(ctx)
	}
	log.Info("handler configured", slog.String("identity", credOpts.Kind()), slog.String("graph", cfg.GraphBaseURL),
		slog.String("keyVault", cfg.KeyVaultURL), slog.String("eventsTopic", cfg.EventsTopic), slog.String("commandQueue", cfg.CommandQueue),
		slog.Int("gomaxprocs", runtime.GOMAXPROCS(0)))
	access, err := arm.New(cred, &arm.Options{Endpoint: cfg.ARMEndpoint, Audience: cfg.ARMAudience, Transport: httpClient, Logger: log})
	if err != nil {
		return nil, err
	}
	opts := serviceOptions(cfg, log)
	opts.DeadLetters = servicebus.NewDeadLetters(sb, cfg.CommandQueue)
	opts.Access = access
	opts.Prober = &azauth.FHIRReader{TenantID: cfg.TenantID, AuthorityHost: cfg.AuthorityHost, Transport: httpClient, HTTPClient: httpClient}
	if cfg.VerifyTimeout > 0 {
		opts.Verifier = &azauth.Verifier{TenantID: cfg.TenantID, AuthorityHost: cfg.AuthorityHost, Scope: cfg.VerifyScope, Transport: httpClient}
		opts.VerifyTimeout = cfg.VerifyTimeout
		opts.VerifySuccesses = cfg.VerifySuccesses
	}
	if w.Registrar != nil {
		w.Registrar(opts)
	}
	return &wired{svc: registrar.New(dir, store, pub, opts), checks: preflightChecks(cfg, cred, dir, store, sb, access), close: closeFn}, nil
}

func serviceOptions(cfg config.Config, log *slog.Logger) *registrar.Options {
	return &registrar.Options{
		TenantID:            cfg.TenantID,
		AppNamePrefix:       cfg.AppNamePrefix,
		SecretNamePrefix:    cfg.SecretNamePrefix,
		MaxLifetimeDays:     cfg.MaxLifetimeDays,
		DefaultLifetimeDays: cfg.DefaultLifetimeDays,
		RotateBefore:        cfg.RotateBefore,
		RetireAfter:         cfg.RetireAfter,
		OrphanAfter:         cfg.OrphanAfter,
		MaxDeliveryCount:    cfg.MaxDeliveryCount,
		RetryBudget:         cfg.RetryBudget,
		AttemptTimeout:      cfg.AttemptTimeout,
		ReplicationTimeout:  cfg.ReplicationTimeout,
		EditSpacing:         cfg.EditSpacing,
		FHIR: registrar.FHIRPolicy{
			Services: cfg.FHIRServices, DefaultService: cfg.FHIRDefaultService, Roles: cfg.FHIRAllowedRoles,
		},
		AccessVerifyTimeout: cfg.FHIRAccessTimeout,
		AccessCheckDelay:    cfg.FHIRAccessDelay,
		SelfAppID:           cfg.ClientID,
		Logger:              log,
	}
}
