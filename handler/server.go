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
	Register(ctx context.Context, body []byte, d registrar.Delivery) (registrar.Outcome, error)
	Rotate(ctx context.Context, body []byte, d registrar.Delivery) (registrar.Outcome, error)
	ScheduleRotations(ctx context.Context) (registrar.ScheduleReport, error)
}

// Binding names in functions/*/function.json.
const (
	bindingRequest = "request"
	bindingJob     = "job"
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
	mux.HandleFunc("POST /RegisterApp", s.trigger("RegisterApp", bindingRequest, s.svc.Register))
	mux.HandleFunc("POST /RotateSecret", s.trigger("RotateSecret", bindingJob, s.svc.Rotate))
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

type handleFunc func(context.Context, []byte, registrar.Delivery) (registrar.Outcome, error)

// trigger adapts a Service Bus-triggered domain call to the invoke protocol: 200 completes the
// message, anything else makes the host abandon it for redelivery.
func (s *server) trigger(function, binding string, handle handleFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		log := s.log.With(slog.String("function", function), slog.String("invocationId", r.Header.Get("X-Azure-Functions-InvocationId")))
		inv, status, err := readInvocation(w, r)
		if err != nil {
			log.Error("bad invocation", slog.Any("error", err))
			writeJSON(w, status, invokeResult{Logs: []string{err.Error()}})
			return
		}
		body, err := inv.message(binding)
		if err != nil {
			log.Error("bad invocation", slog.Any("error", err))
			writeJSON(w, http.StatusBadRequest, invokeResult{Logs: []string{err.Error()}})
			return
		}
		d := registrar.Delivery{MessageID: inv.metaString("MessageId")}
		if n, err := inv.metaInt("DeliveryCount"); err == nil {
			d.DeliveryCount = n
		} else {
			d.DeliveryCount = 1
		}
		log = log.With(slog.String("messageId", d.MessageID), slog.Int("deliveryCount", d.DeliveryCount))

		out, err := handle(r.Context(), body, d)
		if err != nil {
			// The registrar has logged why, once; this line only closes the invocation.
			log.Info("invocation failed", slog.Duration("elapsed", time.Since(start)))
			writeJSON(w, http.StatusInternalServerError, invokeResult{
				Logs: []string{fmt.Sprintf("%s failed (delivery %d): %v", function, d.DeliveryCount, err)},
			})
			return
		}
		log.Info("invocation succeeded", slog.String("outcome", string(out.Event.Type)), slog.Bool("reused", out.Reused), slog.Duration("elapsed", time.Since(start)))
		writeJSON(w, http.StatusOK, invokeResult{Logs: []string{summarize(out)}, ReturnValue: out.Event})
	}
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
	line := fmt.Sprintf("ScheduleRotations: %d apps, %d secrets, %d due, %d enqueued, %d retired, %d failed",
		rep.Apps, rep.Secrets, rep.Due, rep.Enqueued, rep.Retired, rep.Failed)
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
