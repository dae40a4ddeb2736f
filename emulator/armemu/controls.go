package armemu

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"appreg/emulator/emu"
)

// Fault is the shared emu.Fault. Operation is one of the Op constants, or "" / "*" for every
// one. Code and Message fill ARM's error body; a PrincipalNotFound fault without a Message gets
// ARM's own text for the principal the request names, so a test can make a principal look
// unreplicated for a few calls.
type Fault = emu.Fault

// Stats is the shared emu.Stats: authenticated calls per operation, faulted ones included.
type Stats = emu.Stats

// State is what Resource Manager holds: the subscription, its resources and role assignments.
type State struct {
	TenantID       string            `json:"tenantId"`
	SubscriptionID string            `json:"subscriptionId"`
	Resources      []string          `json:"resources"`
	Assignments    []AssignmentState `json:"roleAssignments"`
	PrincipalLagMS int64             `json:"principalLagMs"`
	LagWithType    bool              `json:"principalLagWithPrincipalType"`
}

// AssignmentState is an Assignment with its role's name.
type AssignmentState struct {
	Assignment
	RoleName string `json:"roleName"`
	Seeded   bool   `json:"seeded,omitempty"`
}

// State returns a copy of the state.
func (s *Server) State() State {
	s.mu.Lock()
	st := State{TenantID: s.tenantID, SubscriptionID: s.subscription, Resources: []string{}, Assignments: []AssignmentState{},
		PrincipalLagMS: s.principalLag.Milliseconds(), LagWithType: s.lagWithType}
	for _, id := range s.resources {
		st.Resources = append(st.Resources, id)
	}
	for _, a := range s.live {
		st.Assignments = append(st.Assignments, AssignmentState{Assignment: a.Assignment, RoleName: roleName(a.RoleDefinitionID), Seeded: a.seeded})
	}
	s.mu.Unlock()
	sort.Strings(st.Resources)
	sort.Slice(st.Assignments, func(i, j int) bool {
		a, b := st.Assignments[i], st.Assignments[j]
		if a.Scope != b.Scope {
			return a.Scope < b.Scope
		}
		return a.Name < b.Name
	})
	return st
}

// SetPrincipalLag sets how long a new principal stays unknown to Resource Manager's directory
// lookups. withPrincipalType makes requests that name a principalType wait it out too: not
// what Azure does, but how a test makes appreg meet PrincipalNotFound for a while.
func (s *Server) SetPrincipalLag(d time.Duration, withPrincipalType bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.principalLag = max(d, 0)
	s.lagWithType = withPrincipalType
}

// resetData forgets every assignment that was not seeded and restores the seeded ones, deleted
// or not. Resources stay.
func (s *Server) resetData() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = map[string]*assignment{}
	s.history = slices.DeleteFunc(s.history, func(a *assignment) bool { return !a.seeded })
	for _, a := range s.history {
		a.deleted = time.Time{}
		s.live[strings.ToLower(a.Name)] = a
	}
}

type seedJSON struct {
	Name          string `json:"name"`
	Scope         string `json:"scope"`
	Role          string `json:"role"` // a name or a GUID
	PrincipalID   string `json:"principalId"`
	PrincipalType string `json:"principalType"`
	Condition     string `json:"condition"`
}

type lagJSON struct {
	LagMS             int64 `json:"lagMs"`
	WithPrincipalType bool  `json:"withPrincipalType"`
}

// controlRoutes are Resource Manager's own controls beside the shared ones, under /_emu/arm/.
func (s *Server) controlRoutes() []emu.Route {
	return []emu.Route{
		{Pattern: "POST assignments", Handle: func(r *http.Request) (any, error) {
			var j seedJSON
			if err := emu.Decode(r, &j); err != nil {
				return nil, err
			}
			role, ok := Role(j.Role)
			if !ok {
				if role, ok = RoleByName(j.Role); !ok {
					return nil, fmt.Errorf("unknown role %q", j.Role)
				}
			}
			return s.Seed(Assignment{Name: j.Name, Scope: j.Scope, RoleDefinitionID: role.ID, PrincipalID: j.PrincipalID, PrincipalType: j.PrincipalType, Condition: j.Condition})
		}},
		{Pattern: "POST resources", Handle: func(r *http.Request) (any, error) {
			var j struct {
				ID string `json:"id"`
			}
			if err := emu.Decode(r, &j); err != nil {
				return nil, err
			}
			return nil, s.AddResource(j.ID)
		}},
		{Pattern: "GET principal-lag", Handle: func(*http.Request) (any, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			return lagJSON{LagMS: s.principalLag.Milliseconds(), WithPrincipalType: s.lagWithType}, nil
		}},
		{Pattern: "PUT principal-lag", Handle: func(r *http.Request) (any, error) {
			var j lagJSON
			if err := emu.Decode(r, &j); err != nil {
				return nil, err
			}
			s.SetPrincipalLag(time.Duration(j.LagMS)*time.Millisecond, j.WithPrincipalType)
			return nil, nil
		}},
	}
}
