package servicebusemu

import (
	"encoding/json"
	"errors"
	"net/http"
)

// ControlPrefix is where azemu mounts ControlHandler.
const ControlPrefix = "/_emu/servicebus/"

// ControlHandler serves the test controls and inspection over HTTP, for
// processes that drive the emulator from outside (azemu mounts it under
// ControlPrefix). Every route takes its arguments as query parameters:
//
//	POST /_emu/servicebus/drop-connections
//	POST /_emu/servicebus/detach-links?entity=q&condition=amqp:link:detach-forced
//	POST /_emu/servicebus/expire-locks?entity=q
//	GET  /_emu/servicebus/stats?entity=q
//	GET  /_emu/servicebus/dead-letters?entity=q
func (s *Server) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	routes := []struct {
		pattern string
		handle  func(r *http.Request) (any, error)
	}{
		{"POST " + ControlPrefix + "drop-connections", func(*http.Request) (any, error) {
			s.DropConnections()
			return nil, nil
		}},
		{"POST " + ControlPrefix + "detach-links", func(r *http.Request) (any, error) {
			cond := r.URL.Query().Get("condition")
			if cond == "" {
				cond = "amqp:link:detach-forced"
			}
			return nil, s.DetachLinks(r.URL.Query().Get("entity"), cond)
		}},
		{"POST " + ControlPrefix + "expire-locks", func(r *http.Request) (any, error) {
			return nil, s.ExpireLocks(r.URL.Query().Get("entity"))
		}},
		{"GET " + ControlPrefix + "stats", func(r *http.Request) (any, error) {
			return s.Stats(r.URL.Query().Get("entity"))
		}},
		{"GET " + ControlPrefix + "dead-letters", func(r *http.Request) (any, error) {
			return s.DeadLetters(r.URL.Query().Get("entity"))
		}},
	}
	for _, rt := range routes {
		mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			v, err := rt.handle(r)
			w.Header().Set("Content-Type", "application/json")
			switch {
			case errors.Is(err, errNotFound):
				w.WriteHeader(http.StatusNotFound)
				v = map[string]string{"error": err.Error()}
			case err != nil:
				w.WriteHeader(http.StatusBadRequest)
				v = map[string]string{"error": err.Error()}
			case v == nil:
				w.WriteHeader(http.StatusNoContent)
				return
			}
			_ = json.NewEncoder(w).Encode(v)
		})
	}
	return mux
}
