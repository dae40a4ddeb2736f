package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"appreg/internal/registrar"
)

// service is what the routes need from the domain.
type service interface {
	Handle(ctx context.Context, kind string, body []byte, d registrar.Delivery) (registrar.Outcome, error)
	ScheduleRotations(ctx context.Context) (registrar.ScheduleReport, error)
}

// Binding names in functions/*/function.json.
const (
	bindingCommand = "command"
	bindingTimer   = "timer"
)

// maxInvocationBytes bounds the envelope. A 256 KB Service Bus message, JSON-encoded twice,
// stays well below it; the registrar rejects any message body over 64 KiB itself.
const maxInvocationBytes = 4 << 20

type server struct {
	svc service
	log *slog.Logger
}

// routes lists every path the handler serves.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.ready)
	mux.HandleFunc("POST /ClientCommand", s.clientCommand)
	mux.HandleFunc("POST /ScheduleRotations", s.scheduleRotations)
	mux.HandleFunc("/", s.notFound)
	return mux
}

// ready answers the host's start-up probe. Any response counts; a JSON one is kindest to humans.
func (s *server) ready(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, invokeResult{Logs: []string{fmt.Sprintf("no function at %s %s", r.Method, r.URL.Path)}})
}

// clientCommand adapts a message of the command queue to the invoke protocol: its Subject names
// the command, its SessionId the client. 200 completes the message; anything else makes the host
// abandon it for redelivery.
func (s *server) clientCommand(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	log := s.log.With(slog.String("function", "ClientCommand"), slog.String("invocationId", r.Header.Get("X-Azure-Functions-InvocationId")))
	inv, status, err := readInvocation(w, r)
	if err != nil {
		log.Error("bad invocation", slog.Any("error", err))
		writeJSON(w, status, invokeResult{Logs: []string{err.Error()}})
		return
	}
	body, err := inv.message(bindingCommand)
	if err != nil {
		log.Error("bad invocation", slog.Any("error", err))
		writeJSON(w, http.StatusBadRequest, invokeResult{Logs: []string{err.Error()}})
		return
	}
	d := registrar.Delivery{
		MessageID:    inv.metaString("MessageId"),
		SessionID:    inv.metaString("SessionId"),
		EnqueuedTime: enqueuedTime(inv),
	}
	if n, err := inv.metaInt("DeliveryCount"); err == nil {
		d.DeliveryCount = n
	} else {
		d.DeliveryCount = 1
	}
	kind := inv.metaString("Subject")
	if kind == "" {
		kind = inv.metaString("Label") // the name older extensions give Subject
	}
	log = log.With(slog.String("messageId", d.MessageID), slog.String("command", kind), slog.String("sessionId", d.SessionID), slog.Int("deliveryCount", d.DeliveryCount))

	out, err := s.svc.Handle(r.Context(), kind, body, d)
	if err != nil {
		// The registrar has logged why, once; this line only closes the invocation.
		log.Info("invocation failed", slog.Duration("elapsed", time.Since(start)))
		writeJSON(w, http.StatusInternalServerError, invokeResult{
			Logs: []string{fmt.Sprintf("ClientCommand %s failed (delivery %d): %v", kind, d.DeliveryCount, err)},
		})
		return
	}
	log.Info("invocation succeeded", slog.String("outcome", string(out.Event.Type)), slog.Bool("reused", out.Reused), slog.Duration("elapsed", time.Since(start)))
	writeJSON(w, http.StatusOK, invokeResult{Logs: []string{summarize(out)}, ReturnValue: out.Event})
}

func (s *server) scheduleRotations(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	log := s.log.With(slog.String("function", "ScheduleRotations"), slog.String("invocationId", r.Header.Get("X-Azure-Functions-InvocationId")))
	inv, status, err := readInvocation(w, r)
	if err != nil {
		writeJSON(w, status, invokeResult{Logs: []string{err.Error()}})
		return
	}
	var timer struct{ IsPastDue bool }
	if raw, err := inv.message(bindingTimer); err == nil {
		_ = json.Unmarshal(raw, &timer)
	}
	rep, err := s.svc.ScheduleRotations(r.Context())
	line := fmt.Sprintf("ScheduleRotations: %d apps, %d secrets, %d rotations and %d maintenance jobs sent, %d dead letters announced, %d failed",
		rep.Apps, rep.Secrets, rep.Due, rep.Maintenance, rep.DeadLettered, rep.Failed)
	if err != nil {
		// The host only logs a failed timer run; the next run starts afresh from Graph and Key Vault.
		log.Error("schedule run incomplete", slog.Any("error", err), slog.Bool("isPastDue", timer.IsPastDue), slog.Duration("elapsed", time.Since(start)))
		writeJSON(w, http.StatusInternalServerError, invokeResult{Logs: []string{line, err.Error()}, ReturnValue: rep})
		return
	}
	log.Info("schedule run finished", slog.Bool("isPastDue", timer.IsPastDue), slog.Duration("elapsed", time.Since(start)))
	writeJSON(w, http.StatusOK, invokeResult{Logs: []string{line}, ReturnValue: rep})
}

func readInvocation(w http.ResponseWriter, r *http.Request) (invocation, int, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInvocationBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return invocation{}, http.StatusRequestEntityTooLarge, fmt.Errorf("invocation larger than %d bytes", maxInvocationBytes)
		}
		return invocation{}, http.StatusBadRequest, fmt.Errorf("reading invocation: %w", err)
	}
	inv, err := parseInvocation(body)
	if err != nil {
		return invocation{}, http.StatusBadRequest, err
	}
	return inv, 0, nil
}

// summarize is the one line the host shows for an invocation. It carries identifiers only.
func summarize(out registrar.Outcome) string {
	e := out.Event
	switch e.Type {
	case "":
		return "done: nothing to announce"
	case registrar.EventRejected:
		return fmt.Sprintf("rejected request %s: %v", e.RequestID, e.Reasons)
	default:
		return fmt.Sprintf("%s %s: appId=%s keyId=%s secret=%s expires=%s reused=%v",
			e.Type, e.ClientName, e.AppID, e.KeyID, e.SecretURI, e.ExpiresOn.Format(time.RFC3339), out.Reused)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"Outputs":null,"Logs":["encoding the response failed"],"ReturnValue":null}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
