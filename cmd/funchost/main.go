// Command funchost runs a staged Azure Functions custom-handler app (host.json
// plus one folder per function) the way the Functions host does, against a
// real Service Bus namespace or the local emulator. See emulator/funchost.
//
//	funchost [--dir dist] [--settings dist/local.settings.json] [--log-level info]
//
// Exit status: 0 after a clean stop (SIGINT or SIGTERM), 2 for bad usage or an
// invalid app, 1 when the handler or Service Bus fails at run time.
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
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"appreg/emulator/funchost"
)

const usage = `Usage: funchost [flags]

Runs a staged Azure Functions custom-handler app the way the Functions host
does: starts the handler named in host.json, delivers Service Bus messages to
its serviceBusTrigger functions and fires its timerTrigger functions.

App settings come from local.settings.json (Values); environment variables
of the same name take precedence, as with Azure Functions Core Tools.

Flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills funchost at once
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("funchost", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "dist", "the staged app: host.json and one folder per function")
	settingsPath := fs.String("settings", "", "local.settings.json to read app settings from (default <dir>/local.settings.json, if present)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	readyTimeout := fs.Duration("ready-timeout", 60*time.Second, "how long the handler has to answer GET /")
	printUsage := func(w io.Writer) {
		fs.SetOutput(w)
		fmt.Fprint(w, usage)
		fs.PrintDefaults()
	}
	fs.Usage = func() {} // printed below, to stdout for --help only
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return 0
		}
		printUsage(stderr)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "funchost: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "funchost: --log-level %q: want debug, info, warn or error\n", *logLevel)
		return 2
	}
	hopts := &slog.HandlerOptions{Level: level}
	var log *slog.Logger
	switch *logFormat {
	case "text":
		log = slog.New(slog.NewTextHandler(stderr, hopts))
	case "json":
		log = slog.New(slog.NewJSONHandler(stderr, hopts))
	default:
		fmt.Fprintf(stderr, "funchost: --log-format %q: want text or json\n", *logFormat)
		return 2
	}

	settings, err := appSettings(*dir, *settingsPath, log)
	if err != nil {
		fmt.Fprintf(stderr, "funchost: %v\n", err)
		return 2
	}
	app, err := funchost.Load(*dir, settings)
	if err != nil {
		fmt.Fprintf(stderr, "funchost: invalid app in %s:\n  %s\n", *dir, strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return 2
	}
	h := funchost.New(app, &funchost.Options{Logger: log, ReadyTimeout: *readyTimeout})
	if err := h.Run(ctx); err != nil {
		log.Error("funchost failed", "error", err)
		return 1
	}
	return 0
}

// appSettings merges local.settings.json with the environment, which wins,
// and exports the file's values into funchost's own environment as Core
// Tools does, so that azidentity in this process sees AZURE_* and
// IDENTITY_* settings too.
func appSettings(dir, path string, log *slog.Logger) (map[string]string, error) {
	explicit := path != ""
	if !explicit {
		path = filepath.Join(dir, "local.settings.json")
	}
	values := map[string]string{}
	switch v, err := funchost.LoadSettings(path); {
	case err == nil:
		values = v
		log.Info("app settings loaded", "file", path, "count", len(v))
	case !explicit && errors.Is(err, os.ErrNotExist):
		log.Info("no local.settings.json; app settings come from the environment", "looked for", path)
	default:
		return nil, err
	}
	for k, v := range values {
		if _, set := os.LookupEnv(k); set {
			log.Debug("app setting taken from the environment, not local.settings.json", "setting", k)
			continue
		}
		if k != "" && !strings.ContainsAny(k, "=\x00") {
			_ = os.Setenv(k, v)
		}
	}
	out := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			out[k] = v
		}
	}
	for k, v := range values {
		if _, ok := out[k]; !ok {
			out[k] = v // keys the environment cannot hold
		}
	}
	return out, nil
}
