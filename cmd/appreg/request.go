package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"appreg/internal/config"
	"appreg/internal/registrar"
)

// maxFileBytes bounds what is read from a request file: well past the message limit, so an
// oversize file is reported as too_large by the handler's own check rather than cut short.
const maxFileBytes = 4 * registrar.MaxMessageBytes

// requestFields are the request flags of enqueue.
type requestFields struct {
	file        string
	clientName  string
	displayName string
	redirects   stringList
	lifetime    int
	audience    string
	notes       string
	requestedBy string
	requestID   string
	fhirService string
	fhirRoles   stringList
}

func (f *flags) requestFlags(r *requestFields, withFile bool) {
	if withFile {
		f.StringVar(&r.file, "file", "", "request file (JSON, as in examples/); - reads standard input")
	}
	f.StringVar(&r.clientName, "client-name", "", "the client's stable name, ^[a-z][a-z0-9-]{2,62}$")
	f.StringVar(&r.displayName, "display-name", "", "display name of the app (default: the client name)")
	f.Var(&r.redirects, "redirect-uri", "redirect URI, https:// (http:// for localhost only); repeatable")
	f.IntVar(&r.lifetime, "lifetime-days", 0, "secret lifetime in days (default: DEFAULT_SECRET_LIFETIME_DAYS)")
	f.StringVar(&r.audience, "audience", "", "sign-in audience: AzureADMyOrg (default) or AzureADMultipleOrgs")
	f.StringVar(&r.notes, "notes", "", "free text stored on the app, e.g. the owning team")
	f.StringVar(&r.requestedBy, "requested-by", "", "who asks, for the audit trail")
	f.StringVar(&r.requestID, "request-id", "", "request id, also the Service Bus MessageId (default: a new UUID)")
	f.Var(&r.fhirRoles, "fhir-role", "FHIR role to grant, e.g. \"FHIR Data Reader\" (one of FHIR_ALLOWED_ROLES); repeatable")
	f.StringVar(&r.fhirService, "fhir-service", "", "ARM id of the FHIR service the roles are for (default: FHIR_DEFAULT_SERVICE)")
}

// wireRequest is a registration request as sent, in DESIGN §2's field order.
type wireRequest struct {
	RequestID      string      `json:"requestId"`
	ClientName     string      `json:"clientName"`
	DisplayName    string      `json:"displayName,omitempty"`
	SignInAudience string      `json:"signInAudience,omitempty"`
	RedirectURIs   []string    `json:"redirectUris,omitempty"`
	Secret         *wireSecret `json:"secret,omitempty"`
	Notes          string      `json:"notes,omitempty"`
	RequestedBy    string      `json:"requestedBy,omitempty"`
	FHIRAccess     *wireFHIR   `json:"fhirAccess,omitempty"`
}

type wireFHIR struct {
	Service string   `json:"service,omitempty"`
	Roles   []string `json:"roles"`
}

type wireSecret struct {
	LifetimeDays int `json:"lifetimeDays"`
}

// body builds the request body the handler will receive, from the file or from the flags. A
// request without a requestId gets one (the flag's, or a new UUID): the handler requires it and
// it becomes the MessageId that Service Bus duplicate detection keys on. It returns a usage
// error only for problems the handler could not even see (no input, an unreadable file); an
// invalid request comes back as a body for ParseRegistration to judge.
func (c *cli) body(f *flags, r *requestFields) ([]byte, error) {
	fromFlags := r.clientName != "" || r.displayName != "" || len(r.redirects) > 0 || f.isSet("lifetime-days") ||
		r.audience != "" || r.notes != "" || r.requestedBy != "" || len(r.fhirRoles) > 0 || r.fhirService != ""
	switch {
	case r.file != "" && fromFlags:
		return nil, usageErrorf("--file and the request flags (--client-name, ...) exclude each other")
	case r.file == "" && !fromFlags:
		return nil, usageErrorf("give a request: --file FILE, or --client-name NAME and the other request flags")
	}
	id := r.requestID
	if r.file == "" {
		if id == "" {
			id = c.newID()
		}
		w := wireRequest{
			RequestID: id, ClientName: r.clientName, DisplayName: r.displayName, SignInAudience: r.audience,
			RedirectURIs: r.redirects, Notes: r.notes, RequestedBy: r.requestedBy,
		}
		if f.isSet("lifetime-days") {
			w.Secret = &wireSecret{LifetimeDays: r.lifetime}
		}
		if len(r.fhirRoles) > 0 || r.fhirService != "" {
			w.FHIRAccess = &wireFHIR{Service: r.fhirService, Roles: r.fhirRoles}
		}
		return json.Marshal(w)
	}
	raw, err := c.readFile(r.file)
	if err != nil {
		return nil, usageErrorf("%w", err)
	}
	return c.withRequestID(raw, id), nil
}

func (c *cli) readFile(path string) ([]byte, error) {
	var src io.Reader = c.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		src = f
	}
	b, err := io.ReadAll(io.LimitReader(src, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return b, nil
}

// withRequestID sets requestId in a request body: to id when given, else to a new UUID when the
// body has none. A body that is not a JSON object is returned as is, for the validator to judge.
func (c *cli) withRequestID(raw []byte, id string) []byte {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() || len(raw) > registrar.MaxMessageBytes {
		return raw
	}
	if cur, ok := m["requestId"]; ok && id == "" && string(cur) != "null" {
		return raw // the file names its request; send it byte for byte
	}
	if id == "" {
		id = c.newID()
	}
	m["requestId"], _ = json.Marshal(id)
	out, err := json.Marshal(m)
	if err != nil {
		return raw
	}
	return out
}

// validRequest is what validate and enqueue print for a request that passes.
type validRequest struct {
	RequestID      string   `json:"requestId,omitempty"`
	ClientName     string   `json:"clientName"`
	DisplayName    string   `json:"displayName"`
	SignInAudience string   `json:"signInAudience"`
	RedirectURIs   []string `json:"redirectUris"`
	LifetimeDays   int      `json:"lifetimeDays"`
	Notes          string   `json:"notes,omitempty"`
	RequestedBy    string   `json:"requestedBy,omitempty"`
}

func toValid(r registrar.Registration) validRequest {
	uris := r.RedirectURIs
	if uris == nil {
		uris = []string{}
	}
	return validRequest{
		RequestID: r.RequestID, ClientName: r.ClientName, DisplayName: r.DisplayName, SignInAudience: r.SignInAudience,
		RedirectURIs: uris, LifetimeDays: r.LifetimeDays, Notes: r.Notes, RequestedBy: r.RequestedBy,
	}
}

func printReasons(w io.Writer, reasons []registrar.Reason) {
	width := 0
	for _, r := range reasons {
		width = max(width, len(r.Code))
	}
	for _, r := range reasons {
		field := r.Field
		if field == "" {
			field = "(body)"
		}
		fmt.Fprintf(w, "  %-*s  %s: %s\n", width, r.Code, field, r.Message)
	}
}

const validateAbout = `
Checks a registration request offline with the handler's own validation and the lifetime limits
of the settings (MAX_SECRET_LIFETIME_DAYS, DEFAULT_SECRET_LIFETIME_DAYS), and prints every problem
with its reason code and field. A request without a requestId is checked as enqueue will send it,
with one assigned. Nothing is sent. Exit status 0 when valid, 2 when not.`

func (c *cli) validate(ctx context.Context, args []string) error {
	f := c.flagSet("validate", "validate [--file FILE|-] [--json]", validateAbout)
	var r requestFields
	var asJSON bool
	f.StringVar(&r.file, "file", "", "request file; - or no file reads standard input")
	f.BoolVar(&asJSON, "json", false, "print JSON for machines instead of text")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 1 && r.file == "":
		r.file = pos[0]
	case len(pos) > 0:
		return usageErrorf("unexpected argument %q", pos[0])
	}
	if r.file == "" {
		r.file = "-"
	}
	cfg, err := c.settings("", false)
	if err != nil {
		return err
	}
	raw, err := c.readFile(r.file)
	if err != nil {
		return usageErrorf("%w", err)
	}
	body := c.withRequestID(raw, "")
	assigned := !bytes.Equal(body, raw) // enqueue will assign a fresh one; do not show this one
	reg, reasons := registrar.ParseRegistration(body, limits(cfg))
	if assigned {
		reg.RequestID = ""
	}
	if asJSON {
		out := struct {
			Valid   bool               `json:"valid"`
			Request *validRequest      `json:"request,omitempty"`
			Reasons []registrar.Reason `json:"reasons"`
		}{Valid: len(reasons) == 0, Reasons: reasons}
		if out.Reasons == nil {
			out.Reasons = []registrar.Reason{}
		}
		if out.Valid {
			v := toValid(reg)
			out.Request = &v
		}
		writeJSON(c.stdout, out)
	} else if len(reasons) == 0 {
		id := reg.RequestID
		if assigned {
			id = "assigned at enqueue"
		}
		fmt.Fprintf(c.stdout, "valid: %s (%q), %s, secret lifetime %d days, %d redirect URI(s), requestId %s\n",
			reg.ClientName, reg.DisplayName, reg.SignInAudience, reg.LifetimeDays, len(reg.RedirectURIs), id)
	} else {
		fmt.Fprintf(c.stdout, "invalid: %d problem(s)\n", len(reasons))
		printReasons(c.stdout, reasons)
	}
	if len(reasons) > 0 {
		return exitWith(exitUsage)
	}
	return nil
}

const enqueueAbout = `
Sends a registration request to the client's session on COMMAND_QUEUE (SessionId = clientName,
Subject register), from a file or built from the flags. The request is first validated exactly
as the handler will validate it; an invalid request is not sent (exit status 2). Its requestId (a
new UUID unless the file or --request-id names one) is the message's MessageId, so a resend
within Service Bus's duplicate-detection window is dropped.

With --wait, prints the outcome event for the request: registered (the app and the Key Vault
secret id and expiry, never the value; with fhirAccess, the roles granted, pending), rejected
(every reason), or failed (dead-lettered). --wait-access then waits on for access-verified (exit
0) or access-unverified (exit 4): Azure RBAC takes up to 10 minutes, so give it --timeout 15m.
It peeks the events subscription and takes nothing from it, so other requesters are not affected.`

func (c *cli) enqueue(ctx context.Context, args []string) error {
	f := c.flagSet("enqueue", "enqueue (--file FILE | --client-name NAME [request flags]) [--request-id ID] [--wait [--timeout 5m]]", enqueueAbout)
	var r requestFields
	var cf connFlags
	f.requestFlags(&r, true)
	wait := f.Bool("wait", false, "wait for the outcome event and exit with its status")
	waitAccess := f.Bool("wait-access", false, "with fhirAccess: wait on until access is proven (access-verified) or given up on")
	timeout := f.Duration("timeout", 5*time.Minute, "how long --wait waits")
	f.connection(&cf)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q", pos[0])
	}
	if *timeout <= 0 {
		return usageErrorf("--timeout must be positive")
	}
	*wait = *wait || *waitAccess
	body, err := c.body(f, &r)
	if err != nil {
		return err
	}
	cfg, err := c.settings(cf.endpoints, true)
	if err != nil {
		return err
	}
	reg, reasons := registrar.ParseRegistration(body, limits(cfg))
	if len(reasons) > 0 {
		if cf.json {
			writeJSON(c.stderr, map[string]any{"valid": false, "reasons": reasons})
		} else {
			fmt.Fprintf(c.stderr, "%s enqueue: invalid request, not sent (%d problem(s)):\n", c.prog, len(reasons))
			printReasons(c.stderr, reasons)
		}
		return exitWith(exitUsage)
	}
	b, err := c.connect(cfg)
	if err != nil {
		return err
	}
	defer b.close()
	return c.sendAndWait(ctx, b, sendSpec{
		queue: cfg.CommandQueue, messageID: reg.RequestID, requestID: reg.RequestID, clientName: reg.ClientName,
		subject: registrar.CommandRegister, body: body, props: map[string]any{"clientName": reg.ClientName},
		waitAccess: *waitAccess && len(reg.FHIRAccess) > 0,
	}, *wait, *timeout, cf.json)
}

type sendSpec struct {
	queue, messageID, requestID, clientName string
	subject                                 string // the command; the session is the client
	waitAccess                              bool   // wait past "registered" for the access proof
	body                                    []byte
	props                                   map[string]any
	send                                    func(context.Context) error // nil: send body to queue
}

// sendAndWait sends a message and, with wait, prints the outcome event of its requestId.
//
// Before sending it moves past the events already there, so that it waits for an outcome that
// comes after the send: a stale event of an earlier request with the same id must not be mistaken
// for this one's, and the wait costs the same however many events the subscription retains.
func (c *cli) sendAndWait(ctx context.Context, b *bus, s sendSpec, wait bool, timeout time.Duration, asJSON bool) error {
	var w *watcher
	if wait {
		var err error
		if w, err = b.watch(); err != nil {
			return err
		}
		defer w.close()
		if err := w.skipToEnd(ctx); err != nil {
			return err
		}
	}
	send := s.send
	if send == nil {
		send = func(ctx context.Context) error {
			return b.sendCommand(ctx, s.queue, queued{id: s.messageID, subject: s.subject, session: s.clientName, body: s.body, props: s.props})
		}
	}
	if err := send(ctx); err != nil {
		return err
	}
	sent := struct {
		RequestID  string     `json:"requestId"`
		MessageID  string     `json:"messageId"`
		Queue      string     `json:"queue"`
		ClientName string     `json:"clientName"`
		Outcome    *seenEvent `json:"outcome,omitempty"`
	}{RequestID: s.requestID, MessageID: s.messageID, Queue: s.queue, ClientName: s.clientName}
	if !wait {
		if asJSON {
			writeJSON(c.stdout, sent)
		} else {
			fmt.Fprintf(c.stdout, "enqueued request %s for %s on %s\n", s.requestID, s.clientName, s.queue)
			fmt.Fprintf(c.stderr, "follow it with: %s events --follow --request-id %s\n", c.prog, s.requestID)
		}
		return nil
	}
	if !asJSON {
		fmt.Fprintf(c.stderr, "enqueued request %s for %s on %s; waiting up to %s for its outcome…\n", s.requestID, s.clientName, s.queue, timeout)
	}
	ev, err := w.wait(ctx, c.poll, time.Now().Add(timeout), func(e seenEvent) bool {
		if e.Event.RequestID != s.requestID {
			return false
		}
		if s.waitAccess && e.Event.Type == registrar.EventRegistered && len(e.Event.FHIRAccess) > 0 {
			if !asJSON {
				printOutcome(c.stdout, e.Event)
				fmt.Fprintf(c.stderr, "waiting for the FHIR access proof (Azure RBAC takes up to 10 minutes)…\n")
			}
			return false
		}
		return terminal(e.Event.Type) || e.Event.Type == registrar.EventAccessVerified || e.Event.Type == registrar.EventAccessUnverified
	})
	if errors.Is(err, errWaitTimeout) {
		return &exitError{code: exitTimeout, err: fmt.Errorf("no outcome for request %s within %s; it may still be queued or retrying: see '%s events --request-id %s' and '%s dlq list'. "+
			"If a request with this id was sent before, within the queue's duplicate-detection window, Service Bus dropped this one: send it with a new --request-id",
			s.requestID, timeout, c.prog, s.requestID, c.prog)}
	}
	if err != nil {
		return err
	}
	if asJSON {
		sent.Outcome = &ev
		writeJSON(c.stdout, sent)
	} else {
		printOutcome(c.stdout, ev.Event)
	}
	if code := outcomeCode(ev.Event.Type); code != exitOK {
		return exitWith(code)
	}
	return nil
}

// limits are the lifetime limits requests are validated against, as in the handler.
func limits(cfg config.Config) registrar.Limits {
	return registrar.Limits{MaxLifetimeDays: cfg.MaxLifetimeDays, DefaultLifetimeDays: cfg.DefaultLifetimeDays,
		FHIR: registrar.FHIRPolicy{Services: cfg.FHIRServices, DefaultService: cfg.FHIRDefaultService, Roles: cfg.FHIRAllowedRoles}}
}

// printOutcome prints an outcome event for a person: identifiers, never a secret (events carry
// none).
func printOutcome(w io.Writer, e registrar.Event) {
	fmt.Fprintf(w, "%s %s\n", e.Type, e.ClientName)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "  %-19s %s\n", k, v)
		}
	}
	row("requestId", e.RequestID)
	row("appId", e.AppID)
	row("servicePrincipalId", e.ServicePrincipalID)
	row("keyId", e.KeyID)
	row("secret (Key Vault)", e.SecretURI)
	if !e.ExpiresOn.IsZero() {
		row("expiresOn", e.ExpiresOn.UTC().Format(time.RFC3339))
	}
	if e.Verified != nil {
		if *e.Verified {
			row("signs in", "yes (verified at Entra before this event)")
		} else {
			row("signs in", "not yet verified: Entra was still replicating the new password; retry the first token request")
		}
	}
	for _, a := range e.FHIRAccess {
		row("FHIR access", fmt.Sprintf("%s on %s: %s", strings.Join(a.Roles, ", "), a.URL, accessText(a.Status)))
	}
	if len(e.RevokedKeyIDs) > 0 {
		row("revoked", strings.Join(e.RevokedKeyIDs, ", ")+" (removed before this event; they no longer sign in)")
	}
	if len(e.StillValidKeyIDs) > 0 {
		row("STILL SIGN IN", strings.Join(e.StillValidKeyIDs, ", ")+" (could not be removed: remove them by hand)")
	}
	if len(e.Reasons) > 0 {
		fmt.Fprintln(w, "  reasons:")
		var b strings.Builder
		printReasons(&b, e.Reasons)
		fmt.Fprint(w, indent(b.String(), "  "))
	}
}

func accessText(status string) string {
	switch status {
	case registrar.AccessPending:
		return "granted; not proven yet (Azure RBAC takes up to 10 minutes; an access-verified event follows)"
	case registrar.AccessVerified:
		return "verified: the client read the service with its secret"
	}
	return status
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString(prefix + l)
		}
	}
	return b.String()
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
