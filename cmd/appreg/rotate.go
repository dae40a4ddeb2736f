package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"appreg/internal/registrar"
	"appreg/internal/servicebus"
)

const rotateAbout = `
Asks for a new secret for a registered client now, instead of when the scheduler finds it due:
sends a rotation job (reason on-demand) to the client's session on COMMAND_QUEUE. The new secret becomes a new version
of the client's Key Vault secret; the old password keeps working for RETIRE_AFTER so running
instances can pick up the new version. --revoke-old removes every other password as soon as the
new one is stored; --compromised does that too and records the reason.

With --wait, prints the "rotated" event (new keyId, Key Vault version and expiry; never the
value), or the rejection (for instance app_not_found) or failure. With --revoke-old or
--compromised, "rotated" is published only after every other password has been removed, so exit
status 0 means the old passwords no longer exist in Entra. If they cannot be removed, the job is
retried and finally fails: the CLI exits 4 and prints the keyIds that still sign in.`

func (c *cli) rotate(ctx context.Context, args []string) error {
	f := c.flagSet("rotate", "rotate <clientName> [--revoke-old] [--compromised] [--wait [--timeout 5m]]", rotateAbout)
	var cf connFlags
	revoke := f.Bool("revoke-old", false, "remove the superseded password at once instead of after RETIRE_AFTER")
	compromised := f.Bool("compromised", false, "the secret leaked: reason compromised, old password removed at once")
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
	}
	if *timeout <= 0 {
		return usageErrorf("--timeout must be positive")
	}
	job := registrar.RotationJob{
		ClientName:  pos[0],
		Reason:      registrar.ReasonOnDemand,
		RevokeOld:   *revoke || *compromised,
		RequestedAt: c.now().UTC(),
	}
	if *compromised {
		job.Reason = registrar.ReasonCompromised
	}
	// Judge the job with the handler's parser, so a typo fails here and not on the queue.
	body, _ := json.Marshal(job)
	if _, reasons := registrar.ParseRotationJob(body); len(reasons) > 0 {
		fmt.Fprintf(c.stderr, "%s rotate: invalid job, not sent:\n", c.prog)
		printReasons(c.stderr, reasons)
		return exitWith(exitUsage)
	}
	b, err := c.open(cf)
	if err != nil {
		return err
	}
	defer b.close()
	return c.sendRotation(ctx, b, job, *wait, *timeout, cf.json)
}

// sendRotation sends a job through the handler's own publisher, so the message (MessageId,
// Subject, properties) is the one the scheduler sends, and waits for its outcome.
func (c *cli) sendRotation(ctx context.Context, b *bus, job registrar.RotationJob, wait bool, timeout time.Duration, asJSON bool) error {
	pub, err := servicebus.NewPublisher(b.client, b.cfg.EventsTopic, b.cfg.CommandQueue, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer pub.Close(context.WithoutCancel(ctx))
	return c.sendAndWait(ctx, b, sendSpec{
		queue: b.cfg.CommandQueue, messageID: job.MessageID(), requestID: job.RequestID(), clientName: job.ClientName,
		send: func(ctx context.Context) error { return pub.EnqueueRotation(ctx, job) },
	}, wait, timeout, asJSON)
}

const eventsAbout = `
Lists the outcome events on EVENTS_TOPIC (subscription EVENTS_SUBSCRIPTION, default appreg),
oldest first, by peeking: nothing is taken off the subscription. --follow keeps listening and
prints new events as they arrive until Ctrl-C. --json prints one JSON object per line.`

func (c *cli) events(ctx context.Context, args []string) error {
	f := c.flagSet("events", "events [--follow] [--request-id ID] [--type TYPE] [--client-name NAME] [--json]", eventsAbout)
	var cf connFlags
	follow := f.Bool("follow", false, "keep listening for new events until Ctrl-C")
	requestID := f.String("request-id", "", "only events of this request")
	typ := f.String("type", "", "only events of this type: registered, rotated, rejected, failed or retired")
	client := f.String("client-name", "", "only events of this client")
	f.connection(&cf)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q", pos[0])
	}
	switch registrar.EventType(*typ) {
	case "", registrar.EventRegistered, registrar.EventRotated, registrar.EventRejected, registrar.EventFailed, registrar.EventRetired:
	default:
		return usageErrorf("--type %q: want registered, rotated, rejected, failed or retired", *typ)
	}
	b, err := c.open(cf)
	if err != nil {
		return err
	}
	defer b.close()
	w, err := b.watch()
	if err != nil {
		return err
	}
	defer w.close()
	match := func(e seenEvent) bool {
		return (*requestID == "" || e.Event.RequestID == *requestID) &&
			(*typ == "" || string(e.Event.Type) == *typ) &&
			(*client == "" || e.Event.ClientName == *client)
	}
	for n := 0; ; {
		evs, err := w.poll(ctx)
		for _, e := range evs {
			if !match(e) {
				continue
			}
			n++
			if cf.json {
				writeJSON(c.stdout, e)
			} else {
				fmt.Fprintln(c.stdout, eventLine(e))
			}
		}
		if err != nil {
			if ctx.Err() != nil && *follow {
				return nil // Ctrl-C ends a follow normally
			}
			return err
		}
		if !*follow {
			if n == 0 && !cf.json {
				fmt.Fprintln(c.stderr, "no events")
			}
			return nil
		}
		t := time.NewTimer(c.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// eventLine is one event on one line, for people.
func eventLine(s seenEvent) string {
	e := s.Event
	if s.unreadable {
		return fmt.Sprintf("%s  %-10s  (unreadable body)  messageId=%s", s.EnqueuedTime.Format(time.RFC3339), e.Type, s.MessageID)
	}
	parts := []string{s.EnqueuedTime.Format(time.RFC3339), fmt.Sprintf("%-10s", e.Type), e.ClientName, "request=" + e.RequestID}
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("appId", e.AppID)
	add("keyId", e.KeyID)
	add("secret", e.SecretURI)
	if !e.ExpiresOn.IsZero() {
		add("expires", e.ExpiresOn.UTC().Format(time.RFC3339))
	}
	for _, r := range e.Reasons {
		parts = append(parts, fmt.Sprintf("[%s %s: %s]", r.Code, r.Field, r.Message))
	}
	return strings.Join(parts, "  ")
}
