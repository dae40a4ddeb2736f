package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"appreg/internal/registrar"
)

// stubService answers every call with fixed results; routing and the envelope are under test.
type stubService struct {
	out   registrar.Outcome
	err   error
	kind  string
	got   []byte
	d     registrar.Delivery
	sched registrar.ScheduleReport
}

func (s *stubService) Handle(_ context.Context, kind string, body []byte, d registrar.Delivery) (registrar.Outcome, error) {
	s.kind, s.got, s.d = kind, body, d
	return s.out, s.err
}

func (s *stubService) ScheduleRotations(context.Context) (registrar.ScheduleReport, error) {
	return s.sched, s.err
}

func TestRoutes(t *testing.T) {
	envelope := `{"Data":{"command":"\"{\\\"a\\\":1}\""},"Metadata":{"DeliveryCount":"4","MessageId":"\"m-1\"","Subject":"\"rotate\"","SessionId":"\"lab-sync\"","EnqueuedTimeUtc":"2026-03-04T05:06:01"}}`
	tests := []struct {
		name, method, path, body string
		err                      error
		status                   int
	}{
		{"Ready", http.MethodGet, "/", "", nil, http.StatusOK},
		{"Command", http.MethodPost, "/ClientCommand", envelope, nil, http.StatusOK},
		{"CommandFails", http.MethodPost, "/ClientCommand", envelope, errors.New("graph down"), http.StatusInternalServerError},
		{"OldRoute", http.MethodPost, "/RegisterApp", envelope, nil, http.StatusNotFound},
		{"Schedule", http.MethodPost, "/ScheduleRotations", `{"Data":{"timer":{"IsPastDue":true}},"Metadata":{}}`, nil, http.StatusOK},
		{"ScheduleFails", http.MethodPost, "/ScheduleRotations", `{"Data":{},"Metadata":{}}`, errors.New("partial"), http.StatusInternalServerError},
		{"NotAnEnvelope", http.MethodPost, "/ClientCommand", `[1,2]`, nil, http.StatusBadRequest},
		{"NoData", http.MethodPost, "/ClientCommand", `{"Data":{},"Metadata":{}}`, nil, http.StatusBadRequest},
		{"TooLarge", http.MethodPost, "/ClientCommand", `{"Data":{"command":"` + strings.Repeat("x", maxInvocationBytes) + `"}}`, nil, http.StatusRequestEntityTooLarge},
		{"UnknownFunction", http.MethodPost, "/DeleteEverything", envelope, nil, http.StatusNotFound},
		{"WrongMethod", http.MethodGet, "/ClientCommand", "", nil, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &stubService{err: tt.err, out: registrar.Outcome{Event: registrar.Event{Type: registrar.EventRegistered}}}
			h := (&server{svc: svc, log: slog.New(slog.DiscardHandler)}).routes()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body)))
			if rec.Code != tt.status {
				t.Errorf("status = %d, want %d: %s", rec.Code, tt.status, rec.Body.String())
			}
			// The host fails any reply that is not JSON, whatever its status.
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			body, _ := io.ReadAll(rec.Body)
			if !strings.HasPrefix(string(body), "{") {
				t.Errorf("body is not a JSON object: %.80s", body)
			}
			// The host truncates to whole seconds; the budget counts from the end of that second.
			enqueued := time.Date(2026, 3, 4, 5, 6, 2, 0, time.UTC)
			if tt.name == "Command" && (string(svc.got) != `{"a":1}` || svc.kind != "rotate" || svc.d.MessageID != "m-1" ||
				svc.d.DeliveryCount != 4 || svc.d.SessionID != "lab-sync" || !svc.d.EnqueuedTime.Equal(enqueued)) {
				t.Errorf("service got %s body %s delivery %+v", svc.kind, svc.got, svc.d)
			}
		})
	}
}
