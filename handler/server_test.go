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

	"appreg/internal/registrar"
)

// stubService answers every call with fixed results; routing and the envelope are under test.
type stubService struct {
	out   registrar.Outcome
	err   error
	got   []byte
	d     registrar.Delivery
	sched registrar.ScheduleReport
}

func (s *stubService) Register(_ context.Context, body []byte, d registrar.Delivery) (registrar.Outcome, error) {
	s.got, s.d = body, d
	return s.out, s.err
}

func (s *stubService) Rotate(_ context.Context, body []byte, d registrar.Delivery) (registrar.Outcome, error) {
	s.got, s.d = body, d
	return s.out, s.err
}

func (s *stubService) ScheduleRotations(context.Context) (registrar.ScheduleReport, error) {
	return s.sched, s.err
}

func TestRoutes(t *testing.T) {
	envelope := `{"Data":{"request":"\"{\\\"a\\\":1}\""},"Metadata":{"DeliveryCount":"4","MessageId":"\"m-1\""}}`
	tests := []struct {
		name, method, path, body string
		err                      error
		status                   int
	}{
		{"Ready", http.MethodGet, "/", "", nil, http.StatusOK},
		{"Register", http.MethodPost, "/RegisterApp", envelope, nil, http.StatusOK},
		{"RegisterFails", http.MethodPost, "/RegisterApp", envelope, errors.New("graph down"), http.StatusInternalServerError},
		{"Rotate", http.MethodPost, "/RotateSecret", strings.Replace(envelope, "request", "job", 1), nil, http.StatusOK},
		{"Schedule", http.MethodPost, "/ScheduleRotations", `{"Data":{"timer":{"IsPastDue":true}},"Metadata":{}}`, nil, http.StatusOK},
		{"ScheduleFails", http.MethodPost, "/ScheduleRotations", `{"Data":{},"Metadata":{}}`, errors.New("partial"), http.StatusInternalServerError},
		{"NotAnEnvelope", http.MethodPost, "/RegisterApp", `[1,2]`, nil, http.StatusBadRequest},
		{"NoData", http.MethodPost, "/RegisterApp", `{"Data":{},"Metadata":{}}`, nil, http.StatusBadRequest},
		{"TooLarge", http.MethodPost, "/RegisterApp", `{"Data":{"request":"` + strings.Repeat("x", maxInvocationBytes) + `"}}`, nil, http.StatusRequestEntityTooLarge},
		{"UnknownFunction", http.MethodPost, "/DeleteEverything", envelope, nil, http.StatusNotFound},
		{"WrongMethod", http.MethodGet, "/RegisterApp", "", nil, http.StatusNotFound},
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
			if tt.name == "Register" && (string(svc.got) != `{"a":1}` || svc.d.MessageID != "m-1" || svc.d.DeliveryCount != 4) {
				t.Errorf("service got body %s delivery %+v", svc.got, svc.d)
			}
		})
	}
}
