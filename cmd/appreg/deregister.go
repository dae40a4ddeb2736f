package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"appreg/internal/registrar"
)

const deregisterAbout = `
Offboards a client: sends a deregister command to its session on COMMAND_QUEUE. The handler
removes the FHIR roles appreg granted it, every password, its service principal and its
application — for good, so the name and appreg's directory-object quota are free again — and
disables (does not purge) its Key Vault secret, so the last value stays recoverable for audit.
Running it again changes nothing and reports "deregistered" again. A later registration of the
same clientName creates a new application with a new appId.

With --wait, prints the "deregistered" event, or the rejection or failure.`

func (c *cli) deregister(ctx context.Context, args []string) error {
	f := c.flagSet("deregister", "deregister <clientName> [--request-id ID] [--requested-by WHO] [--wait [--timeout 5m]]", deregisterAbout)
	var cf connFlags
	requestID := f.String("request-id", "", "request id, also the Service Bus MessageId (default: a new UUID)")
	requestedBy := f.String("requested-by", "", "who asks, for the audit trail")
	wait := f.Bool("wait", false, "wait for the outcome event and exit with its status")
	timeout := f.Duration("timeout", 5*time.Minute, "how long --wait waits")
	f.connection(&cf)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return usageErrorf("missing <clientName>")
	case len(pos) > 1:
		return usageErrorf("unexpected argument %q", pos[1])
	case *timeout <= 0:
		return usageErrorf("--timeout must be positive")
	}
	id := *requestID
	if id == "" {
		id = c.newID()
	}
	body, _ := json.Marshal(struct {
		RequestID   string `json:"requestId"`
		ClientName  string `json:"clientName"`
		RequestedBy string `json:"requestedBy,omitempty"`
	}{id, pos[0], *requestedBy})
	// Judge it with the handler's parser, so a typo fails here and not on the queue.
	req, reasons := registrar.ParseDeregistration(body)
	if len(reasons) > 0 {
		fmt.Fprintf(c.stderr, "%s deregister: invalid request, not sent:\n", c.prog)
		printReasons(c.stderr, reasons)
		return exitWith(exitUsage)
	}
	b, err := c.open(cf)
	if err != nil {
		return err
	}
	defer b.close()
	return c.sendAndWait(ctx, b, sendSpec{
		queue: b.cfg.CommandQueue, messageID: req.RequestID, requestID: req.RequestID, clientName: req.ClientName,
		subject: registrar.CommandDeregister, body: body, props: map[string]any{"clientName": req.ClientName},
	}, *wait, *timeout, cf.json)
}
