// Command azemu runs the local Azure appreg is tested against: Entra ID, Microsoft Graph and Key
// Vault over HTTPS with a test CA, and Service Bus over AMQP. See package appreg/emulator/azemu.
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
	"syscall"

	"appreg/emulator/azemu"
	"appreg/emulator/servicebusemu"
)

const usage = `Usage: azemu serve --dir DIR [flags]

Runs the local Azure in the foreground until SIGINT or SIGTERM: Entra ID, Microsoft Graph and Key
Vault on one HTTPS origin signed by a fresh test CA, the App Service managed-identity endpoint on
plain HTTP, and Service Bus over AMQP on plain TCP. Everything listens on loopback only.

Once every service accepts connections it writes DIR/ca.pem and then DIR/endpoints.json (tenant,
URLs, the managed-identity endpoint, the Service Bus connection string and a seeded client for
appreg's handler). Test controls are under <origin>/_emu/<service>/.

Flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "serve" && args[0] != "-h" && args[0] != "--help" && args[0] != "help") {
		fmt.Fprint(stderr, usage)
		fmt.Fprintln(stderr, "  (run 'azemu serve --help' for the flags)")
		return 2
	}
	if args[0] != "serve" {
		fmt.Fprint(stdout, usage)
		fmt.Fprintln(stdout, "  (run 'azemu serve --help' for the flags)")
		return 0
	}
	fs := flag.NewFlagSet("azemu serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory to write ca.pem and endpoints.json into (required)")
	httpsAddr := fs.String("https-addr", "127.0.0.1:0", "listen address of the HTTPS origin (Entra, Graph, Key Vault)")
	amqpAddr := fs.String("amqp-addr", "127.0.0.1:0", "listen address of Service Bus (AMQP, plain TCP)")
	tenant := fs.String("tenant", "", "tenant GUID (default: a random one)")
	sbConfig := fs.String("servicebus-config", "", "Service Bus entities in the official emulator's Config.json schema (default: appreg's queues and topic)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "azemu serve: --dir is required")
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "azemu serve: --log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	opts := &azemu.Options{HTTPSAddr: *httpsAddr, AMQPAddr: *amqpAddr, TenantID: *tenant, Logger: log}
	if *sbConfig != "" {
		f, err := os.Open(*sbConfig)
		if err != nil {
			fmt.Fprintf(stderr, "azemu serve: --servicebus-config: %v\n", err)
			return 2
		}
		cfg, err := servicebusemu.LoadConfig(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "azemu serve: --servicebus-config %s: %v\n", *sbConfig, err)
			return 2
		}
		opts.ServiceBusConfig = cfg
	}
	srv, err := azemu.NewServer(opts)
	if err != nil {
		log.Error("start failed", "error", err)
		return 1
	}
	defer srv.Close()
	if err := srv.WriteDir(*dir); err != nil {
		log.Error("writing endpoints failed", "dir", *dir, "error", err)
		return 1
	}
	ep := srv.Endpoints()
	fmt.Fprintf(stdout, "azemu ready: %s (Entra, Graph, Key Vault), amqp %s, tenant %s; endpoints in %s\n",
		srv.URL(), srv.ServiceBus.Addr(), ep.TenantID, *dir+"/endpoints.json")
	<-ctx.Done()
	log.Info("stopping")
	return 0
}
