package fhiremu

import (
	"net/http"
	"time"

	"appreg/emulator/emu"
)

// State is what the FHIR services hold.
type State struct {
	Services           []ServiceState `json:"services"`
	PropagationDelayMS int64          `json:"propagationDelayMs"`
}

// ServiceState is one service and how many resources it holds.
type ServiceState struct {
	ID        string `json:"id"`
	BasePath  string `json:"basePath"`
	Resources int    `json:"resources"`
}

// State returns a copy of the state.
func (s *Server) State() State {
	st := State{Services: []ServiceState{}, PropagationDelayMS: s.propagationDelay().Milliseconds()}
	for _, svc := range s.services {
		st.Services = append(st.Services, ServiceState{ID: svc.ID, BasePath: svc.BasePath(), Resources: len(s.data[svc.Name])})
	}
	return st
}

type delayJSON struct {
	DelayMS int64 `json:"delayMs"`
}

// controlRoutes are the FHIR emulator's own controls beside the shared ones, under /_emu/fhir/.
func (s *Server) controlRoutes() []emu.Route {
	return []emu.Route{
		{Pattern: "GET propagation", Handle: func(*http.Request) (any, error) {
			return delayJSON{DelayMS: s.propagationDelay().Milliseconds()}, nil
		}},
		{Pattern: "PUT propagation", Handle: func(r *http.Request) (any, error) {
			var j delayJSON
			if err := emu.Decode(r, &j); err != nil {
				return nil, err
			}
			s.SetPropagationDelay(time.Duration(j.DelayMS) * time.Millisecond)
			return nil, nil
		}},
	}
}
