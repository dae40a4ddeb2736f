package emu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Prefix is where every service's controls live: Prefix + service + "/" + control.
const Prefix = "/_emu/"

// faultJSON is a Fault on the wire, with durations in milliseconds and seconds.
type faultJSON struct {
	Operation         string  `json:"operation,omitempty"`
	Status            int     `json:"status,omitempty"`
	Code              string  `json:"code,omitempty"`
	Message           string  `json:"message,omitempty"`
	LatencyMS         int64   `json:"latencyMs,omitempty"`
	RetryAfterSeconds int64   `json:"retryAfterSeconds,omitempty"`
	Count             int     `json:"count,omitempty"`
	Probability       float64 `json:"probability,omitempty"`
	ForMS             int64   `json:"forMs,omitempty"`
}

// MarshalJSON writes the /_emu/ wire form.
func (f Fault) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultJSON{f.Operation, f.Status, f.Code, f.Message, f.Latency.Milliseconds(), f.RetryAfterSeconds(), f.Count, f.Probability, f.For.Milliseconds()})
}

// UnmarshalJSON reads the /_emu/ wire form, refusing fields it does not know so that a typo
// does not arm a fault that matches everything.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	if err := strictJSON(b, &j); err != nil {
		return err
	}
	*f = Fault{j.Operation, j.Status, j.Code, j.Message, time.Duration(j.LatencyMS) * time.Millisecond,
		time.Duration(j.RetryAfterSeconds) * time.Second, j.Count, j.Probability,
		time.Duration(j.ForMS) * time.Millisecond, time.Time{}}
	return nil
}

type throttleJSON struct {
	Operation         string `json:"operation"`
	RetryAfterSeconds int64  `json:"retryAfterSeconds"`
	Count             int    `json:"count"`
}

type latencyJSON struct {
	Operation string `json:"operation"`
	LatencyMS int64  `json:"latencyMs"`
}

// Route is a service-specific control under the service's prefix: Pattern is a method and the
// last path segment, "POST replicate". Handle returns the JSON reply (nil: 204 No Content) or an
// error, reported as 400 unless it wraps ErrNotFound.
type Route struct {
	Pattern string
	Handle  func(r *http.Request) (any, error)
}

// ErrNotFound marks a control error as 404 (an unknown entity, say) rather than 400.
var ErrNotFound = errors.New("not found")

// Handler serves the controls of c, and extra service-specific ones, at
// /_emu/<service>/<control>. Every emulator serves it from its own Handler, so the paths are the
// same on an emulator's own listener and on azemu's shared origin.
func Handler(c *Controls, extra ...Route) http.Handler {
	prefix := Prefix + c.cfg.Service + "/"
	routes := map[string]func(*http.Request) (any, error){
		"GET faults": func(*http.Request) (any, error) {
			return map[string][]Fault{"faults": c.Faults()}, nil
		},
		"POST faults": func(r *http.Request) (any, error) {
			var f Fault
			if err := Decode(r, &f); err != nil {
				return nil, err
			}
			return nil, c.InjectFault(f)
		},
		"DELETE faults": func(*http.Request) (any, error) {
			c.ClearFaults()
			return nil, nil
		},
		"POST throttle": func(r *http.Request) (any, error) {
			var t throttleJSON
			if err := Decode(r, &t); err != nil {
				return nil, err
			}
			return nil, c.Throttle(t.Operation, time.Duration(t.RetryAfterSeconds)*time.Second, t.Count)
		},
		"GET latency": func(*http.Request) (any, error) {
			return map[string][]latencyJSON{"latency": c.latencyList()}, nil
		},
		"PUT latency": func(r *http.Request) (any, error) {
			var l latencyJSON
			if err := Decode(r, &l); err != nil {
				return nil, err
			}
			return nil, c.SetLatency(l.Operation, time.Duration(l.LatencyMS)*time.Millisecond)
		},
		"DELETE latency": func(*http.Request) (any, error) {
			for op := range c.Latency() {
				_ = c.SetLatency(op, 0)
			}
			return nil, nil
		},
		"GET stats": func(*http.Request) (any, error) { return c.Stats(), nil },
		"GET state": func(*http.Request) (any, error) {
			if c.cfg.State == nil {
				return struct{}{}, nil
			}
			return c.cfg.State(), nil
		},
		"POST reset": func(*http.Request) (any, error) {
			c.Reset()
			return nil, nil
		},
	}
	for _, rt := range extra {
		routes[rt.Pattern] = rt.Handle
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, prefix)
		if !ok {
			WriteError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("%s: no control at %s", errUnknownControl, r.URL.Path))
			return
		}
		h := routes[r.Method+" "+name]
		if h == nil {
			status, code := http.StatusNotFound, "NotFound"
			for pattern := range routes {
				if _, n, _ := strings.Cut(pattern, " "); n == name {
					status, code = http.StatusMethodNotAllowed, "MethodNotAllowed"
				}
			}
			WriteError(w, status, code, fmt.Sprintf("%s: %s %s", errUnknownControl, r.Method, r.URL.Path))
			return
		}
		v, err := h(r)
		switch {
		case errors.Is(err, ErrNotFound):
			WriteError(w, http.StatusNotFound, "NotFound", err.Error())
		case err != nil:
			WriteError(w, http.StatusBadRequest, "BadRequest", err.Error())
		case v == nil:
			w.WriteHeader(http.StatusNoContent)
		default:
			WriteJSON(w, http.StatusOK, v)
		}
	})
}

// ControlError is the one body every control error has: {"error":{"code","message"}}.
type ControlError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// WriteError writes a control error.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	var e ControlError
	e.Error.Code, e.Error.Message = code, message
	WriteJSON(w, status, e)
}

// WriteJSON writes v as a JSON reply of the controls.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// Decode reads a control's JSON body strictly: one object, no unknown fields, at most 64 KiB.
func Decode(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10+1))
	if err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	if len(b) > 64<<10 {
		return errors.New("the body is larger than 64 KiB")
	}
	if err := strictJSON(b, v); err != nil {
		return fmt.Errorf("the body must be a JSON object of this control: %w", err)
	}
	return nil
}

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}
