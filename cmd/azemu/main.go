// Command azemu is the local Azure appreg is developed and tested against, and the tools that
// run the product on it: `azemu serve` runs Entra ID, Microsoft Graph and Key Vault over HTTPS
// with a test CA and Service Bus over AMQP; `azemu run` (what `make run` runs) adds the
// Functions host simulator with the staged handler and drives it with the appreg CLI; `azemu
// stage` (what `make package` runs) stages dist/. See package appreg/emulator/azemu.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"appreg/emulator/azemu"
	"appreg/emulator/funchost"
	"appreg/emulator/graphemu"
	"appreg/emulator/servicebusemu"
	"appreg/internal/endpoints"
)

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1 // a service or a step failed
	exitUsage   = 2 // bad usage, or inputs that are not there
)

const usage = `Usage: azemu <command> [flags]

The local Azure: Entra ID, Microsoft Graph, Key Vault, Resource Manager (role assignments) and
a FHIR service on one HTTPS origin signed by a fresh test CA, the App Service managed-identity
endpoint on plain HTTP, and Service Bus over AMQP on plain TCP, all on loopback. Test controls
are under <origin>/_emu/<service>/.

Commands:
  serve   run the local Azure in the foreground; write DIR/endpoints.json for other processes
  run     run the whole product on it: Functions host, handler, the examples ('make run')
  stage   stage dist/ for the Functions host: host.json, the functions, the handler ('make package')

Run 'azemu <command> --help' for a command's flags.
`

// app is the command without the process, so tests can run it and look inside.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// beforeStop, if set, sees a running `azemu run` stack after its last step.
	beforeStop func(ctx context.Context, emu *azemu.Server)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills azemu at once
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return (&app{stdout: stdout, stderr: stderr, getenv: os.Getenv}).main(ctx, args)
}

func (a *app) main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return a.serve(ctx, args[1:])
	case "run":
		return a.runStack(ctx, args[1:])
	case "stage":
		return a.stage(ctx, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprint(a.stdout, usage)
		return exitOK
	}
	fmt.Fprintf(a.stderr, "azemu: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// parseFlags parses a command's flags; done means the command ends here with code (after
// --help, on stdout, or a flag error).
func parseFlags(fs *flag.FlagSet, stdout io.Writer, args []string) (code int, done bool) {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return exitOK, true
	case err != nil:
		return exitUsage, true
	}
	return exitOK, false
}

const serveUsage = `Usage: azemu serve --dir DIR [flags]

Runs the local Azure in the foreground until SIGINT or SIGTERM. Once every service accepts
connections it writes DIR/ca.pem and then DIR/endpoints.json (tenant, URLs, the managed-identity
endpoint, the Service Bus connection string, Resource Manager, the subscription, the FHIR
services, and seeded clients for appreg's handler and for an operator). It listens on exactly
the three sockets endpoints.json names. The realistic profile (the default) is as harsh as
Azure: Graph's replicas lag behind writes and flap; --profile kind switches that off. The seed
of the lag is printed, and GET <origin>/_emu/profile reports it.

Flags:
`

func (a *app) serve(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("azemu serve", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	dir := fs.String("dir", "", "directory to write ca.pem and endpoints.json into (required)")
	httpsAddr := fs.String("https-addr", "127.0.0.1:0", "listen address of the HTTPS origin (Entra, Graph, Key Vault, Resource Manager, FHIR)")
	msiAddr := fs.String("msi-addr", "127.0.0.1:0", "listen address of the managed-identity endpoint (plain HTTP)")
	amqpAddr := fs.String("amqp-addr", "127.0.0.1:0", "listen address of Service Bus (AMQP, plain TCP)")
	tenant := fs.String("tenant", "", "tenant GUID (default: a random one)")
	sbConfig := fs.String("servicebus-config", "", "Service Bus entities in the official emulator's Config.json schema (default: appreg's queues and topic)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	var harsh harshness
	harsh.flags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), serveUsage)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, a.stdout, args); done {
		return code
	}
	if *dir == "" {
		fmt.Fprintln(a.stderr, "azemu serve: --dir is required")
		return exitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(a.stderr, "azemu serve: --log-level: %v\n", err)
		return exitUsage
	}
	log := slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: level}))

	opts := &azemu.Options{HTTPSAddr: *httpsAddr, MSIAddr: *msiAddr, AMQPAddr: *amqpAddr, TenantID: *tenant, Logger: log}
	if err := harsh.apply(opts); err != nil {
		fmt.Fprintf(a.stderr, "azemu serve: %v\n", err)
		return exitUsage
	}
	if *sbConfig != "" {
		f, err := os.Open(*sbConfig)
		if err != nil {
			fmt.Fprintf(a.stderr, "azemu serve: --servicebus-config: %v\n", err)
			return exitUsage
		}
		cfg, err := servicebusemu.LoadConfig(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(a.stderr, "azemu serve: --servicebus-config %s: %v\n", *sbConfig, err)
			return exitUsage
		}
		opts.ServiceBusConfig = cfg
	}
	srv, err := azemu.NewServer(opts)
	if err != nil {
		log.Error("start failed", "error", err)
		return exitRuntime
	}
	defer srv.Close()
	if err := srv.WriteDir(*dir); err != nil {
		log.Error("writing endpoints failed", "dir", *dir, "error", err)
		return exitRuntime
	}
	ep := srv.Endpoints()
	fmt.Fprintf(a.stdout, "azemu ready: %s (Entra, Graph, Key Vault, Resource Manager, FHIR), amqp %s, tenant %s; endpoints in %s\n",
		srv.URL(), srv.ServiceBus.Addr(), ep.TenantID, *dir+"/"+endpoints.FileName)
	fmt.Fprintln(a.stdout, describeProfile(srv))
	<-ctx.Done()
	log.Info("stopping")
	return exitOK
}

const stageUsage = `Usage: azemu stage [--root .] [--dist dist] [--release] [--goos OS] [--goarch ARCH] [--zip FILE]

Stages the app the way the Functions host expects to find it: DIST/host.json, DIST/<Name>/
function.json for every functions/<Name>/, and DIST/handler built from ROOT/handler. DIST is
replaced; a directory that is not empty and holds no host.json is refused. --release builds the
handler as it ships (static, -trimpath, stripped); 'make package' uses --release for linux/amd64.
--zip also writes the package Azure is given (bin/appreg-dist.zip in 'make package'): every entry
with its Unix mode, the handler as 0755, refused unless the handler is a Linux executable.

Flags:
`

func (a *app) stage(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("azemu stage", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	root := fs.String("root", ".", "the repository: host.json, functions/, handler/")
	dist := fs.String("dist", "dist", "where to stage the app")
	release := fs.Bool("release", false, "build the handler as it ships: CGO_ENABLED=0, -trimpath, stripped")
	goos := fs.String("goos", runtime.GOOS, "operating system to build the handler for")
	goarch := fs.String("goarch", runtime.GOARCH, "architecture to build the handler for")
	zipOut := fs.String("zip", "", "also zip the staged app into this file, the handler stored as 0755")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), stageUsage)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, a.stdout, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(a.stderr, "azemu stage: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	err := funchost.Stage(ctx, *root, *dist, &funchost.StageOptions{
		GOOS: *goos, GOARCH: *goarch, Release: *release, BuildOutput: a.stderr,
	})
	if err != nil {
		fmt.Fprintf(a.stderr, "azemu stage: %v\n", err)
		return exitRuntime
	}
	entries, _ := os.ReadDir(*dist)
	fmt.Fprintf(a.stdout, "staged %s/:", *dist)
	for _, e := range entries {
		fmt.Fprintf(a.stdout, " %s", e.Name())
	}
	fmt.Fprintln(a.stdout)
	if *zipOut != "" {
		if err := funchost.Zip(*dist, *zipOut); err != nil {
			fmt.Fprintf(a.stderr, "azemu stage: %v\n", err)
			return exitRuntime
		}
		fmt.Fprintf(a.stdout, "packaged %s (handler -rwxr-xr-x)\n", *zipOut)
	}
	return exitOK
}

// harshness is the flags that choose how harsh the local Azure is, shared by serve and run.
type harshness struct {
	profile        string
	seed           uint64
	lagMin, lagMax time.Duration
}

func (h *harshness) flags(fs *flag.FlagSet) {
	fs.StringVar(&h.profile, "profile", string(azemu.Realistic), "realistic (Graph replicas lag and flap, managed-identity tokens are cached, as in Azure) or kind (no lag)")
	fs.Uint64Var(&h.seed, "seed", 0, "seed of the replication lag, to repeat a run (default: a random one, printed)")
	fs.DurationVar(&h.lagMin, "lag-min", 0, "shortest Graph replica lag (default: the profile's)")
	fs.DurationVar(&h.lagMax, "lag-max", 0, "longest Graph replica lag (default: the profile's)")
}

func (h *harshness) apply(opts *azemu.Options) error {
	p, err := azemu.ParseProfile(h.profile)
	if err != nil {
		return fmt.Errorf("--profile: %w", err)
	}
	opts.Profile, opts.Seed = p, h.seed
	if h.lagMin != 0 || h.lagMax != 0 {
		r := graphemu.Replication{MinLag: h.lagMin, MaxLag: h.lagMax}
		if p == azemu.Realistic {
			r.Replicas = graphemu.Realistic.Replicas
			if h.lagMax == 0 {
				r.MaxLag = max(graphemu.Realistic.MaxLag, h.lagMin)
			}
		}
		if r.MinLag > r.MaxLag || r.MinLag < 0 {
			return fmt.Errorf("--lag-min %v must be between 0 and --lag-max %v", r.MinLag, r.MaxLag)
		}
		opts.Replication = &r
	}
	return nil
}

// describeProfile is the line that says how harsh the running local Azure is and how to repeat
// its randomness.
func describeProfile(srv *azemu.Server) string {
	p := srv.ProfileInfo()
	if p.MaxLagMS == 0 {
		return fmt.Sprintf("profile %s: no replication lag", p.Profile)
	}
	return fmt.Sprintf("profile %s: %d Graph replicas lagging %s-%s, seed %d (repeat with --seed %d)",
		p.Profile, p.Replicas, time.Duration(p.MinLagMS)*time.Millisecond, time.Duration(p.MaxLagMS)*time.Millisecond, p.Seed, p.Seed)
}
