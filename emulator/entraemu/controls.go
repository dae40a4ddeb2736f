package entraemu

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
)

// Endpoints a Failure can target.
const (
	EndpointAny   = ""
	EndpointToken = "token" // the v2 token endpoint
	EndpointMSI   = "msi"   // the managed-identity endpoint
)

// Failure makes the next Count requests to an endpoint fail (Count 0: until cleared).
type Failure struct {
	Endpoint    string `json:"endpoint,omitempty"`    // EndpointToken, EndpointMSI or "" for both
	Status      int    `json:"status"`                // HTTP status, e.g. 503
	Error       string `json:"error,omitempty"`       // OAuth error, default temporarily_unavailable
	Code        int    `json:"code,omitempty"`        // AADSTS number, default 90033
	Description string `json:"description,omitempty"` // without the AADSTS prefix
	RetryAfter  int    `json:"retryAfterSeconds,omitempty"`
	Count       int    `json:"count,omitempty"`
}

func (f *Failure) description(def string) string {
	if f.Description != "" {
		return f.Description
	}
	return def
}

// Stats counts what the endpoints were asked and what they gave.
type Stats struct {
	TokenRequests  int            `json:"tokenRequests"`
	MSIRequests    int            `json:"msiRequests"`
	TokensIssued   int            `json:"tokensIssued"`
	Failures       int            `json:"failuresInjected"`
	TokensByClient map[string]int `json:"tokensByClient"`
}

// Fail queues an injected failure; failures are matched in the order they were added.
func (s *Server) Fail(f Failure) error {
	if f.Status < 400 || f.Status > 599 {
		return fmt.Errorf("entra: failure status %d is not an HTTP error", f.Status)
	}
	if f.Endpoint != EndpointAny && f.Endpoint != EndpointToken && f.Endpoint != EndpointMSI {
		return fmt.Errorf("entra: unknown endpoint %q", f.Endpoint)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, &f)
	return nil
}

// ClearFailures drops every queued failure.
func (s *Server) ClearFailures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = nil
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.TokensByClient = maps.Clone(s.stats.TokensByClient)
	return st
}

// Reset clears failures and counters.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = nil
	s.stats = Stats{TokensByClient: map[string]int{}}
}

func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.stats)
}

// takeFailure returns the first failure aimed at endpoint, using one of its Count.
func (s *Server) takeFailure(endpoint string) *Failure {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.failures {
		if f.Endpoint != EndpointAny && f.Endpoint != endpoint {
			continue
		}
		hit := *f
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				s.failures = slices.Delete(s.failures, i, i+1)
			}
		}
		s.stats.Failures++
		return &hit
	}
	return nil
}

func (s *Server) writeFailure(w http.ResponseWriter, r *http.Request, f *Failure) {
	e := aadServerError()
	if f.Error != "" {
		e.Error = f.Error
	}
	if f.Code != 0 {
		e.Code = f.Code
	}
	e.Description = f.description(e.Description)
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(f.RetryAfter))
	}
	s.writeAADError(w, r, f.Status, e)
}

func (s *Server) emuStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Server) emuAddFailure(w http.ResponseWriter, r *http.Request) {
	var f Failure
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad failure: " + err.Error()})
		return
	}
	if err := s.Fail(f); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) emuClearFailures(w http.ResponseWriter, _ *http.Request) {
	s.ClearFailures()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) emuReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}
