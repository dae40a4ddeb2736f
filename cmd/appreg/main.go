// Command appreg is the requester's and operator's side of appreg: it validates and enqueues
// registration requests, asks for on-demand rotations, follows the outcome events and works the
// dead-letter queues. It ships to production, so it links nothing of the local Azure: running the
// whole product locally is `azemu run` (what `make run` runs).
//
// It reads the same settings as the handler (internal/config), so it validates a request with the
// same code and limits before sending it, and it never sees a secret: outcome events carry Key
// Vault ids, not values. It waits for outcomes by peeking the events subscription, never by
// receiving from it, so any number of requesters can wait on one subscription at once.
//
// Run `appreg --help` for the commands, settings and exit codes.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills appreg at once
	}()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status. Tests call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c := newCLI(getenv, stdout, stderr)
	c.stdin = os.Stdin
	c.prog = progName(os.Args)
	return c.main(ctx, args)
}

// progName is how the printed follow-up commands should invoke this binary: as typed when it was
// started by path (bin/appreg), else by name.
func progName(argv []string) string {
	if len(argv) == 0 || argv[0] == "" || strings.HasSuffix(argv[0], ".test") {
		return "appreg"
	}
	if strings.ContainsRune(argv[0], filepath.Separator) {
		return argv[0]
	}
	return filepath.Base(argv[0])
}
