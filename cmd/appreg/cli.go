package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"

	"appreg/internal/config"
	"appreg/internal/endpoints"
)

// Exit codes. They are API: scripts branch on them.
const (
	exitOK       = 0 // done; with --wait, the request succeeded
	exitRuntime  = 1 // Service Bus unreachable, a send or settle failed
	exitUsage    = 2 // bad usage, invalid settings, or an invalid request (nothing was sent)
	exitRejected = 3 // the handler rejected the request (event "rejected")
	exitFailed   = 4 // the request failed for good and was dead-lettered (event "failed")
	exitTimeout  = 5 // no outcome within --timeout
)

const usage = `Usage: %[1]s <command> [flags]

Registers Entra ID applications for server-side clients through appreg's queue, and shows what
became of them. Secrets never pass through this tool: an outcome names the Key Vault secret
(id and expiry), and the client reads the value from Key Vault with its own identity.

Commands:
  validate   check a request file offline, with the handler's own rules and limits
  enqueue    send a registration request (from a file or flags); --wait for its outcome
  rotate     ask for an on-demand rotation of a client's secret; --wait for it
  deregister offboard a client: roles, passwords, app removed; its secret disabled
  events     list the outcome events; --follow keeps listening
  dlq        list, show, resubmit or purge dead-lettered commands

Run '%[1]s <command> --help' for a command's flags.

Connection (the handler's own settings, read from the environment):
  ServiceBusConnection__fullyQualifiedNamespace   <ns>.servicebus.windows.net; signs in with
                                                  your Azure CLI / developer login (az login)
  ServiceBusConnection                            a connection string, the alternative
  APPREG_ENDPOINTS (or --endpoints FILE)          an endpoints.json of the local Azure
                                                  ('azemu run' prints it); overrides both
  COMMAND_QUEUE, EVENTS_TOPIC                     entity names (defaults as the handler's)
  EVENTS_SUBSCRIPTION                             subscription events are peeked from (appreg)
  MAX_SECRET_LIFETIME_DAYS, DEFAULT_SECRET_LIFETIME_DAYS, FHIR_SERVICES,
  FHIR_DEFAULT_SERVICE, FHIR_ALLOWED_ROLES        the limits requests are checked against;
                                                  set them as the handler has them

Exit status:
  0  success (with --wait: registered / rotated)
  1  runtime or transport error (Service Bus unreachable, a send failed)
  2  bad usage, invalid settings or an invalid request (nothing was sent)
  3  the handler rejected the request (its reasons are printed)
  4  the request failed and was dead-lettered (see '%[1]s dlq list')
  5  timed out waiting for the outcome
`

// exitError carries an exit status. printed means the command has already said why.
type exitError struct {
	code    int
	err     error
	printed bool
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// exitWith is an exit status whose reason is already on the terminal.
func exitWith(code int) error { return &exitError{code: code, printed: true} }

type cli struct {
	prog   string
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	now    func() time.Time
	newID  func() string

	poll time.Duration // how often a waiter peeks the events subscription
	idle time.Duration // how long a dead-letter receive waits for one more message
}

func newCLI(getenv func(string) string, stdout, stderr io.Writer) *cli {
	return &cli{
		prog:   "appreg",
		getenv: getenv,
		stdin:  strings.NewReader(""),
		stdout: stdout,
		stderr: stderr,
		now:    time.Now,
		newID:  uuid.NewString,
		poll:   25 * time.Millisecond,
		idle:   2 * time.Second,
	}
}

type command struct {
	name string
	run  func(c *cli, ctx context.Context, args []string) error
}

var commands = []command{
	{"validate", (*cli).validate},
	{"enqueue", (*cli).enqueue},
	{"rotate", (*cli).rotate},
	{"deregister", (*cli).deregister},
	{"events", (*cli).events},
	{"dlq", (*cli).dlq},
}

func (c *cli) main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(c.stderr, usage, c.prog)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if name == "help" && len(args) > 1 {
			return c.main(ctx, []string{args[1], "--help"})
		}
		fmt.Fprintf(c.stdout, usage, c.prog)
		return exitOK
	}
	for _, cmd := range commands {
		if cmd.name == name {
			return c.exit(name, cmd.run(c, ctx, args[1:]))
		}
	}
	fmt.Fprintf(c.stderr, "%s: unknown command %q; run '%s --help'\n", c.prog, name, c.prog)
	return exitUsage
}

// exit turns a command's error into the exit status, saying why unless the command already did.
func (c *cli) exit(name string, err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if !ee.printed && ee.err != nil {
			fmt.Fprintf(c.stderr, "%s %s: %v\n", c.prog, name, ee.err)
		}
		return ee.code
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintf(c.stderr, "%s %s: interrupted\n", c.prog, name)
		return exitRuntime
	}
	fmt.Fprintf(c.stderr, "%s %s: %v\n", c.prog, name, err)
	return exitRuntime
}

// flags is a command's flag set with the usage text printed for --help.
type flags struct {
	*flag.FlagSet
	c        *cli
	synopsis string
	about    string
}

func (c *cli) flagSet(name, synopsis, about string) *flags {
	fs := flag.NewFlagSet(c.prog+" "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed once, by exit
	return &flags{FlagSet: fs, c: c, synopsis: synopsis, about: about}
}

func (f *flags) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s %s\n\n%s\n", f.c.prog, f.synopsis, strings.TrimSpace(f.about))
	var hasFlags bool
	f.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintf(w, "\nFlags:\n")
		f.SetOutput(w)
		f.PrintDefaults()
		f.SetOutput(io.Discard)
	}
	fmt.Fprintf(w, "\nExit status: see '%s --help'.\n", f.c.prog)
}

// parse parses flags and positional arguments in any order (`rotate name --wait` and
// `rotate --wait name` alike); everything after "--" is positional. --help prints the usage to
// stdout and ends the command with status 0.
func (f *flags) parse(args []string) ([]string, error) {
	var positional []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.printUsage(f.c.stdout)
				return nil, &exitError{code: exitOK, printed: true}
			}
			return nil, usageErrorf("%v (see '%s --help')", err, f.Name())
		}
		rest := f.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

func (f *flags) isSet(name string) bool {
	set := false
	f.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// connFlags are the flags of every command that talks to Service Bus.
type connFlags struct {
	endpoints string
	json      bool
}

func (f *flags) connection(cf *connFlags) {
	f.StringVar(&cf.endpoints, "endpoints", "", "endpoints.json of the local Azure (default $APPREG_ENDPOINTS); overrides the ServiceBusConnection settings")
	f.BoolVar(&cf.json, "json", false, "print JSON for machines instead of text")
}

// settings loads the handler's settings as the CLI needs them. An endpoints.json (flag or
// APPREG_ENDPOINTS) means the local Azure: its connection string and tenant replace whatever the
// environment says about Service Bus.
func (c *cli) settings(endpointsFlag string, needServiceBus bool) (config.Config, error) {
	overrides := map[string]string{}
	path := endpointsFlag
	if path == "" {
		path = c.getenv("APPREG_ENDPOINTS")
	}
	if path != "" {
		ep, err := readEndpoints(path)
		if err != nil {
			return config.Config{}, usageErrorf("%w", err)
		}
		overrides[config.EnvSBConnection] = ep.ServiceBusConnectionString
		overrides[config.EnvSBNamespace] = ""
		overrides[config.EnvTenantID] = ep.TenantID
		// The local Azure's FHIR services are the ones its handler may grant roles on; without
		// them here, the CLI would refuse every fhirAccess its handler accepts.
		if len(ep.FHIRServices) > 0 && c.getenv(config.EnvFHIRServices) == "" {
			overrides[config.EnvFHIRServices] = ep.FHIRSetting()
			if c.getenv(config.EnvFHIRDefaultService) == "" {
				overrides[config.EnvFHIRDefaultService] = ep.FHIRServices[0].ID
			}
		}
	}
	getenv := func(k string) string {
		if v, ok := overrides[k]; ok {
			return v
		}
		return c.getenv(k)
	}
	cfg, err := config.Load(getenv, config.Need{ServiceBus: needServiceBus})
	if err != nil {
		return cfg, usageErrorf("invalid settings:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	return cfg, nil
}

// eventsSubscription is the subscription of EVENTS_TOPIC the CLI peeks.
func (c *cli) eventsSubscription() string {
	if s := strings.TrimSpace(c.getenv("EVENTS_SUBSCRIPTION")); s != "" {
		return s
	}
	return "appreg"
}

// readEndpoints reads an endpoints.json written by azemu. Its CA file is not needed: the CLI
// reaches the local Azure over Service Bus only, which is plain AMQP on loopback.
func readEndpoints(path string) (endpoints.Endpoints, error) {
	ep, err := endpoints.Read(path)
	if err != nil {
		return ep, fmt.Errorf("endpoints: %w", err)
	}
	if ep.ServiceBusConnectionString == "" {
		return ep, fmt.Errorf("endpoints %s: no serviceBusConnectionString", path)
	}
	return ep, nil
}
