package armemu

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"appreg/emulator/internal/token"
)

// Assignment is a role assignment: a principal holding a role at a scope, maybe under an ABAC
// condition.
type Assignment struct {
	Name             string    `json:"name"`
	Scope            string    `json:"scope"`
	RoleDefinitionID string    `json:"roleDefinitionId"` // the role's GUID
	PrincipalID      string    `json:"principalId"`
	PrincipalType    string    `json:"principalType,omitempty"`
	Condition        string    `json:"condition,omitempty"`
	ConditionVersion string    `json:"conditionVersion,omitempty"`
	Description      string    `json:"description,omitempty"`
	CreatedOn        time.Time `json:"createdOn"`
	UpdatedOn        time.Time `json:"updatedOn"`
	CreatedBy        string    `json:"createdBy,omitempty"`
}

// assignment is a stored Assignment: parsed condition, deletion time, whether it was seeded.
type assignment struct {
	Assignment
	cond    condition
	deleted time.Time // zero while the assignment exists
	seeded  bool
}

// effective reports whether the assignment was in force at t: made at or before t and not yet
// deleted. Seeded assignments are as old as the tenant.
func (a *assignment) effective(t time.Time) bool {
	if !a.seeded && a.CreatedOn.After(t) {
		return false
	}
	return a.deleted.IsZero() || a.deleted.After(t)
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// principalTypes are the values ARM accepts for principalType.
var principalTypes = []string{"User", "Group", "ServicePrincipal", "ForeignGroup", "Device"}

// seedNamespace makes the names of seeded assignments that come without one.
var seedNamespace = uuid.MustParse("2f6c1c4e-1b0a-4c55-8c1e-6d1f0a7b9e21")

// Seed creates an assignment as an administrator did before the tests started: without
// authorization or principal checks, in force at once for every data plane (no propagation),
// and kept by Reset. A zero Name is derived from scope, principal and role.
func (s *Server) Seed(a Assignment) (Assignment, error) {
	a.Scope = normScope(a.Scope)
	if _, ok := Role(a.RoleDefinitionID); !ok {
		return Assignment{}, fmt.Errorf("arm: seed: unknown role %q", a.RoleDefinitionID)
	}
	if !guidRE.MatchString(a.PrincipalID) {
		return Assignment{}, fmt.Errorf("arm: seed: principal %q is not a GUID", a.PrincipalID)
	}
	if !s.knownScope(a.Scope) {
		return Assignment{}, fmt.Errorf("arm: seed: scope %s does not exist (AddResource it first)", a.Scope)
	}
	st := &assignment{Assignment: a, seeded: true}
	if a.Condition != "" {
		c, err := parseCondition(a.Condition)
		if err != nil {
			return Assignment{}, fmt.Errorf("arm: seed: %w", err)
		}
		st.cond = c
		if st.ConditionVersion == "" {
			st.ConditionVersion = "2.0"
		}
	}
	if st.Name == "" {
		st.Name = uuid.NewSHA1(seedNamespace, []byte(strings.ToLower(a.Scope+"|"+a.PrincipalID+"|"+a.RoleDefinitionID))).String()
	}
	st.RoleDefinitionID = strings.ToLower(st.RoleDefinitionID)
	st.PrincipalID = strings.ToLower(st.PrincipalID)
	st.CreatedOn = s.now().UTC()
	st.UpdatedOn = st.CreatedOn
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.live[strings.ToLower(st.Name)]; old != nil {
		old.deleted = st.CreatedOn
		if old.seeded {
			s.history = slices.DeleteFunc(s.history, func(a *assignment) bool { return a == old })
		}
	}
	s.live[strings.ToLower(st.Name)] = st
	s.history = append(s.history, st)
	return st.Assignment, nil
}

// Authorized reports whether principalID held, at asOf, a role assignment at scope or above it
// whose role grants dataAction. Data planes ask with their own clock less their propagation
// delay, so a grant or a removal takes effect there that much later, as in Azure. Conditions on
// data-plane assignments are not evaluated: an assignment with one grants nothing here.
func (s *Server) Authorized(principalID, scope, dataAction string, asOf time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.history {
		if !strings.EqualFold(a.PrincipalID, principalID) || !covers(a.Scope, scope) || !a.effective(asOf) || a.Condition != "" {
			continue
		}
		if r, ok := Role(a.RoleDefinitionID); ok && r.allowsDataAction(dataAction) {
			return true
		}
	}
	return false
}

// Assignments lists the assignments that exist now, ordered by scope, then name.
func (s *Server) Assignments() []Assignment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Assignment, 0, len(s.live))
	for _, a := range s.live {
		out = append(out, a.Assignment)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Scope != out[j].Scope {
			return out[i].Scope < out[j].Scope
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// mayDo is Azure RBAC's control-plane decision: the caller holds, at scope or above, a role whose
// actions include action, under a condition (if any) the request fulfils.
func (s *Server) mayDo(principalID, action, scope string, attrs map[string]map[string][]string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.live {
		if !strings.EqualFold(a.PrincipalID, principalID) || !covers(a.Scope, scope) {
			continue
		}
		r, ok := Role(a.RoleDefinitionID)
		if !ok || !r.allowsAction(action) {
			continue
		}
		if a.cond == nil || a.cond.eval(evalContext{action: action, attrs: attrs}) {
			return true
		}
	}
	return false
}

// assignmentAttrs are the attributes a condition reads about an assignment.
func assignmentAttrs(roleID, principalID, principalType string) map[string][]string {
	m := map[string][]string{
		"microsoft.authorization/roleassignments:roledefinitionid": {roleID},
		"microsoft.authorization/roleassignments:principalid":      {principalID},
	}
	if principalType != "" {
		m["microsoft.authorization/roleassignments:principaltype"] = []string{principalType}
	}
	return m
}

// assignmentJSON is an assignment on the wire (api-version 2022-04-01).
type assignmentJSON struct {
	Properties assignmentProps `json:"properties"`
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Name       string          `json:"name"`
}

type assignmentProps struct {
	RoleDefinitionID                   string  `json:"roleDefinitionId"`
	PrincipalID                        string  `json:"principalId"`
	PrincipalType                      string  `json:"principalType"`
	Scope                              string  `json:"scope"`
	Condition                          *string `json:"condition"`
	ConditionVersion                   *string `json:"conditionVersion"`
	CreatedOn                          string  `json:"createdOn"`
	UpdatedOn                          string  `json:"updatedOn"`
	CreatedBy                          *string `json:"createdBy"`
	UpdatedBy                          *string `json:"updatedBy"`
	DelegatedManagedIdentityResourceID *string `json:"delegatedManagedIdentityResourceId"`
	Description                        *string `json:"description"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// roleDefinitionRef is the id a role definition has as seen from scope: subscription-qualified
// at or below the subscription, tenant-level at the root.
func (s *Server) roleDefinitionRef(scope, roleID string) string {
	if strings.HasPrefix(strings.ToLower(scope), "/subscriptions/") {
		return "/subscriptions/" + s.subscription + "/providers/Microsoft.Authorization/roleDefinitions/" + roleID
	}
	return "/providers/Microsoft.Authorization/roleDefinitions/" + roleID
}

func assignmentID(scope, name string) string {
	return strings.TrimSuffix(scope, "/") + "/providers/Microsoft.Authorization/roleAssignments/" + name
}

func (s *Server) toJSON(a Assignment) assignmentJSON {
	pt := a.PrincipalType
	if pt == "" {
		pt = "ServicePrincipal"
		if s.dir != nil {
			if typ, _, ok := s.dir.LookupPrincipal(context.Background(), a.PrincipalID); ok {
				pt = typ
			}
		}
	}
	by := optional(a.CreatedBy)
	return assignmentJSON{
		Properties: assignmentProps{
			RoleDefinitionID: s.roleDefinitionRef(a.Scope, a.RoleDefinitionID),
			PrincipalID:      a.PrincipalID, PrincipalType: pt, Scope: a.Scope,
			Condition: optional(a.Condition), ConditionVersion: optional(a.ConditionVersion),
			CreatedOn: a.CreatedOn.Format(time.RFC3339Nano), UpdatedOn: a.UpdatedOn.Format(time.RFC3339Nano),
			CreatedBy: by, UpdatedBy: by, Description: optional(a.Description),
		},
		ID:   assignmentID(a.Scope, a.Name),
		Type: "Microsoft.Authorization/roleAssignments",
		Name: a.Name,
	}
}

// createBody is the PUT body.
type createBody struct {
	Properties *struct {
		RoleDefinitionID string `json:"roleDefinitionId"`
		PrincipalID      string `json:"principalId"`
		PrincipalType    string `json:"principalType"`
		Description      string `json:"description"`
		Condition        string `json:"condition"`
		ConditionVersion string `json:"conditionVersion"`
	} `json:"properties"`
}

// roleIDFrom takes a role definition's GUID from its id, which must belong to this subscription
// or the tenant.
func (s *Server) roleIDFrom(ref string) (string, bool) {
	l := strings.ToLower(strings.TrimSpace(ref))
	i := strings.LastIndex(l, "/providers/microsoft.authorization/roledefinitions/")
	if i < 0 {
		return "", false
	}
	if prefix := l[:i]; prefix != "" && prefix != "/subscriptions/"+s.subscription {
		return "", false
	}
	id := l[i+len("/providers/microsoft.authorization/roledefinitions/"):]
	if _, ok := Role(id); !ok {
		return "", false
	}
	return id, true
}

func (s *Server) createAssignment(c *call, scope, name string) (int, any, *armError) {
	var body createBody
	if err := json.Unmarshal(c.body, &body); err != nil || body.Properties == nil {
		return 0, nil, errInvalidRequestContent("The request content was invalid and could not be deserialized: a JSON object with 'properties' is required.")
	}
	p := body.Properties
	if !guidRE.MatchString(name) {
		return 0, nil, &armError{http.StatusBadRequest, "InvalidRoleAssignmentId", fmt.Sprintf("The role assignment ID '%s' is not valid. The role assignment ID must be a GUID.", name)}
	}
	if p.PrincipalID == "" || p.RoleDefinitionID == "" {
		return 0, nil, errInvalidRequestContent("The request content was invalid: properties.roleDefinitionId and properties.principalId are required.")
	}
	if !guidRE.MatchString(p.PrincipalID) {
		return 0, nil, &armError{http.StatusBadRequest, "InvalidPrincipalId", "A valid principal ID must be provided for role assignment."}
	}
	if p.PrincipalType != "" && !slices.Contains(principalTypes, p.PrincipalType) {
		return 0, nil, errInvalidRequestContent(fmt.Sprintf("The request content was invalid: principalType '%s' is not one of %s.", p.PrincipalType, strings.Join(principalTypes, ", ")))
	}
	roleID, ok := s.roleIDFrom(p.RoleDefinitionID)
	if !ok {
		return 0, nil, &armError{http.StatusBadRequest, "RoleDefinitionDoesNotExist", fmt.Sprintf("The specified role definition with ID '%s' does not exist.", lastSegment(p.RoleDefinitionID))}
	}
	principalID := strings.ToLower(p.PrincipalID)
	attrs := map[string]map[string][]string{"request": assignmentAttrs(roleID, principalID, p.PrincipalType)}
	if !s.mayDo(c.claims.ObjectID, roleAssignmentsWrite, scope, attrs) {
		return 0, nil, s.authorizationFailed(c.claims, roleAssignmentsWrite, assignmentID(scope, name))
	}
	if !s.knownScope(scope) {
		return 0, nil, &armError{http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("The resource '%s' was not found.", scope)}
	}
	var cond condition
	if p.Condition != "" {
		var err error
		if cond, err = parseCondition(p.Condition); err != nil {
			return 0, nil, &armError{http.StatusBadRequest, "InvalidRoleAssignmentCondition", "The condition is not valid: " + err.Error()}
		}
		if p.ConditionVersion == "" {
			p.ConditionVersion = "2.0"
		}
	}
	now := s.now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.live[strings.ToLower(name)]; old != nil {
		if !strings.EqualFold(old.Scope, scope) || old.PrincipalID != principalID || old.RoleDefinitionID != roleID {
			return 0, nil, &armError{http.StatusBadRequest, "RoleAssignmentUpdateNotPermitted", "Tenant ID, application ID, principal ID, and scope are not allowed to be updated."}
		}
		old.Description, old.Condition, old.ConditionVersion, old.cond = p.Description, p.Condition, p.ConditionVersion, cond
		if p.PrincipalType != "" {
			old.PrincipalType = p.PrincipalType
		}
		old.UpdatedOn = now
		return http.StatusCreated, s.toJSON(old.Assignment), nil
	}
	n := 0
	for _, a := range s.live {
		if strings.EqualFold(a.Scope, scope) && a.PrincipalID == principalID && a.RoleDefinitionID == roleID {
			return 0, nil, &armError{http.StatusConflict, "RoleAssignmentExists", "The role assignment already exists. The ID of the existing role assignment is " + strings.ReplaceAll(a.Name, "-", "") + "."}
		}
		if strings.HasPrefix(strings.ToLower(a.Scope), "/subscriptions/") {
			n++
		}
	}
	if n >= maxAssignments {
		return 0, nil, &armError{http.StatusBadRequest, "RoleAssignmentLimitExceeded", fmt.Sprintf("No more role assignments can be created in this subscription: it has reached the limit of %d.", maxAssignments)}
	}
	if e := s.checkPrincipal(principalID, p.PrincipalType, now); e != nil {
		return 0, nil, e
	}
	a := &assignment{Assignment: Assignment{
		Name: strings.ToLower(name), Scope: scope, RoleDefinitionID: roleID, PrincipalID: principalID, PrincipalType: p.PrincipalType,
		Condition: p.Condition, ConditionVersion: p.ConditionVersion, Description: p.Description,
		CreatedOn: now, UpdatedOn: now, CreatedBy: c.claims.ObjectID,
	}, cond: cond}
	s.live[a.Name] = a
	s.history = append(s.history, a)
	s.log.Info("role assignment created", "name", a.Name, "scope", scope, "role", roleName(roleID), "principal", principalID)
	return http.StatusCreated, s.toJSON(a.Assignment), nil
}

// checkPrincipal is Resource Manager's lookup of the principal in its copy of the directory.
// With principalType set it trusts the caller and skips the lookup, as Microsoft advises for
// principals created moments ago; the lookup lags Entra by the principal lag. Called with s.mu.
func (s *Server) checkPrincipal(principalID, principalType string, now time.Time) *armError {
	if principalType != "" && !s.lagWithType {
		return nil
	}
	visible := false
	if s.dir != nil {
		_, created, ok := s.dir.LookupPrincipal(context.Background(), principalID)
		visible = ok && !now.Before(created.Add(s.principalLag))
	}
	if visible {
		return nil
	}
	return principalNotFound(principalID, s.tenantID)
}

func principalNotFound(principalID, tenantID string) *armError {
	return &armError{http.StatusBadRequest, "PrincipalNotFound", fmt.Sprintf("Principal %s does not exist in the directory %s. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype",
		strings.ReplaceAll(principalID, "-", ""), tenantID)}
}

func (s *Server) getAssignment(c *call, scope, name string) (int, any, *armError) {
	if !s.mayDo(c.claims.ObjectID, roleAssignmentsRead, scope, nil) {
		return 0, nil, s.authorizationFailed(c.claims, roleAssignmentsRead, assignmentID(scope, name))
	}
	s.mu.Lock()
	a := s.live[strings.ToLower(name)]
	s.mu.Unlock()
	if a == nil || !strings.EqualFold(a.Scope, scope) {
		return 0, nil, &armError{http.StatusNotFound, "RoleAssignmentNotFound", fmt.Sprintf("The role assignment '%s' is not found.", name)}
	}
	return http.StatusOK, s.toJSON(a.Assignment), nil
}

func (s *Server) deleteAssignment(c *call, scope, name string) (int, any, *armError) {
	s.mu.Lock()
	a := s.live[strings.ToLower(name)]
	s.mu.Unlock()
	if a == nil || !strings.EqualFold(a.Scope, scope) {
		// Nothing to delete: ARM answers 204 to anyone who may delete here at all.
		if !s.mayDoUnconditionally(c.claims.ObjectID, roleAssignmentsDelete, scope) {
			return 0, nil, s.authorizationFailed(c.claims, roleAssignmentsDelete, assignmentID(scope, name))
		}
		return http.StatusNoContent, nil, nil
	}
	attrs := map[string]map[string][]string{"resource": assignmentAttrs(a.RoleDefinitionID, a.PrincipalID, a.PrincipalType)}
	if !s.mayDo(c.claims.ObjectID, roleAssignmentsDelete, scope, attrs) {
		return 0, nil, s.authorizationFailed(c.claims, roleAssignmentsDelete, assignmentID(scope, name))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.live[strings.ToLower(name)]; cur == a {
		a.deleted = s.now().UTC()
		delete(s.live, strings.ToLower(name))
	}
	s.log.Info("role assignment deleted", "name", a.Name, "scope", a.Scope)
	return http.StatusOK, s.toJSON(a.Assignment), nil
}

// mayDoUnconditionally is mayDo for an action on nothing in particular: conditions need
// attributes of a request or a resource, so any conditional grant of the action counts.
func (s *Server) mayDoUnconditionally(principalID, action, scope string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.live {
		if r, ok := Role(a.RoleDefinitionID); ok && strings.EqualFold(a.PrincipalID, principalID) && covers(a.Scope, scope) && r.allowsAction(action) {
			return true
		}
	}
	return false
}

// listFilter is a parsed $filter of a role-assignment listing.
type listFilter struct {
	principalID string // "" = any
	atScope     bool   // only assignments at or above the scope
}

var (
	principalFilterRE = regexp.MustCompile(`(?i)^principalId\s+eq\s+'([^']*)'$`)
	assignedToRE      = regexp.MustCompile(`(?i)^assignedTo\('([^']*)'\)$`)
)

func parseListFilter(f string) (listFilter, bool) {
	var lf listFilter
	if strings.TrimSpace(f) == "" {
		return lf, true
	}
	for _, part := range regexp.MustCompile(`(?i)\s+and\s+`).Split(strings.TrimSpace(f), -1) {
		part = strings.TrimSpace(part)
		switch {
		case strings.EqualFold(part, "atScope()"):
			lf.atScope = true
		case principalFilterRE.MatchString(part):
			lf.principalID = strings.ToLower(principalFilterRE.FindStringSubmatch(part)[1])
		case assignedToRE.MatchString(part):
			lf.principalID = strings.ToLower(assignedToRE.FindStringSubmatch(part)[1])
		default:
			return lf, false
		}
	}
	return lf, true
}

// listAssignments lists the assignments that apply at scope (those at it and above it) and,
// without atScope(), those below it too, as ARM does.
func (s *Server) listAssignments(c *call, scope string) (int, any, *armError) {
	lf, ok := parseListFilter(c.r.URL.Query().Get("$filter"))
	if !ok {
		return 0, nil, &armError{http.StatusBadRequest, "UnsupportedQuery", fmt.Sprintf("The filter '%s' is not supported. Supported filters are principalId eq '{id}', assignedTo('{id}') and atScope().", c.r.URL.Query().Get("$filter"))}
	}
	if !s.mayDo(c.claims.ObjectID, roleAssignmentsRead, scope, nil) {
		return 0, nil, s.authorizationFailed(c.claims, roleAssignmentsRead, scope+"/providers/Microsoft.Authorization/roleAssignments")
	}
	out := []assignmentJSON{}
	for _, a := range s.Assignments() {
		if lf.principalID != "" && a.PrincipalID != lf.principalID {
			continue
		}
		above := covers(a.Scope, scope)
		below := covers(scope, a.Scope)
		if above || (below && !lf.atScope) {
			out = append(out, s.toJSON(a))
		}
	}
	return http.StatusOK, map[string]any{"value": out}, nil
}

func roleName(id string) string {
	if r, ok := Role(id); ok {
		return r.Name
	}
	return id
}

func lastSegment(id string) string {
	if i := strings.LastIndex(id, "/"); i >= 0 {
		return id[i+1:]
	}
	return id
}

// authorizationFailed is ARM's 403 for a missing permission or an unfulfilled condition; the
// two are indistinguishable to the caller, as in Azure.
func (s *Server) authorizationFailed(c token.Claims, action, scope string) *armError {
	return &armError{http.StatusForbidden, "AuthorizationFailed", fmt.Sprintf(
		"The client '%s' with object id '%s' does not have authorization or an ABAC condition not fulfilled to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
		c.AppID, c.ObjectID, action, scope)}
}
