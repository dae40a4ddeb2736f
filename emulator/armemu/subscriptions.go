package armemu

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// subscriptionJSON is GET /subscriptions' item, as the Azure CLI reads it on az login.
func (s *Server) subscriptionJSON() map[string]any {
	return map[string]any{
		"id":                   "/subscriptions/" + s.subscription,
		"authorizationSource":  "RoleBased",
		"managedByTenants":     []any{},
		"subscriptionId":       s.subscription,
		"tenantId":             s.tenantID,
		"displayName":          "azemu",
		"state":                "Enabled",
		"subscriptionPolicies": map[string]string{"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"},
	}
}

// visible reports whether the caller may see the subscription: like ARM, anyone holding any
// role anywhere in it (or above it).
func (s *Server) visible(principalID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.live {
		if strings.EqualFold(a.PrincipalID, principalID) && (covers(a.Scope, "/subscriptions/"+s.subscription) || covers("/subscriptions/"+s.subscription, a.Scope)) {
			return true
		}
	}
	return false
}

func (s *Server) listSubscriptions(c *call) (int, any, *armError) {
	value := []any{}
	if s.visible(c.claims.ObjectID) {
		value = append(value, s.subscriptionJSON())
	}
	return http.StatusOK, map[string]any{"value": value, "count": map[string]any{"type": "Total", "value": len(value)}}, nil
}

func (s *Server) getSubscription(c *call) (int, any, *armError) {
	if !s.visible(c.claims.ObjectID) {
		return 0, nil, s.authorizationFailed(c.claims, subscriptionsRead, "/subscriptions/"+s.subscription)
	}
	return http.StatusOK, s.subscriptionJSON(), nil
}

// cloudMetadata is GET /metadata/endpoints in its api-version 2015-01-01 shape: where to sign
// in and which audiences Resource Manager accepts. URLs name the host the client addressed.
func (s *Server) cloudMetadata(r *http.Request) map[string]any {
	origin := "https://" + r.Host + "/"
	return map[string]any{
		"galleryEndpoint": "",
		"graphEndpoint":   origin,
		"portalEndpoint":  "",
		"authentication": map[string]any{
			"loginEndpoint": s.authorityURL + "/",
			"audiences":     []string{"https://management.core.windows.net/", "https://management.azure.com/"},
		},
	}
}

// listTenants is GET /tenants: the caller's home tenant, which is the only one.
func (s *Server) listTenants(*call) (int, any, *armError) {
	return http.StatusOK, map[string]any{"value": []any{map[string]any{
		"id": "/tenants/" + s.tenantID, "tenantId": s.tenantID, "countryCode": "US", "displayName": "azemu",
		"domains": []string{s.domain}, "tenantCategory": "Home", "defaultDomain": s.domain, "tenantType": "AAD",
	}}}, nil
}

func (s *Server) roleDefinitionJSON(scope string, r RoleDefinition) map[string]any {
	nonNil := func(v []string) []string {
		if v == nil {
			return []string{}
		}
		return v
	}
	return map[string]any{
		"properties": map[string]any{
			"roleName": r.Name, "type": "BuiltInRole", "description": r.Description, "assignableScopes": []string{"/"},
			"permissions": []any{map[string]any{
				"actions": nonNil(r.Actions), "notActions": nonNil(r.NotActions),
				"dataActions": nonNil(r.DataActions), "notDataActions": nonNil(r.NotDataActions),
			}},
			"createdOn": nil, "updatedOn": nil, "createdBy": nil, "updatedBy": nil,
		},
		"id":   s.roleDefinitionRef(scope, r.ID),
		"type": "Microsoft.Authorization/roleDefinitions",
		"name": r.ID,
	}
}

// getRoleDefinition reads a built-in role; like listing them, it needs no role.
func (s *Server) getRoleDefinition(_ *call, scope, id string) (int, any, *armError) {
	r, ok := Role(id)
	if !ok {
		return 0, nil, &armError{http.StatusNotFound, "RoleDefinitionDoesNotExist", fmt.Sprintf("The specified role definition with ID '%s' does not exist.", id)}
	}
	return http.StatusOK, s.roleDefinitionJSON(scope, r), nil
}

var roleNameFilterRE = regexp.MustCompile(`(?i)^\s*roleName\s+eq\s+'([^']*)'\s*$`)

// listRoleDefinitions lists the built-in roles, or one with $filter=roleName eq '…'. Reading role
// definitions needs no role, as in Azure, where every principal may read them.
func (s *Server) listRoleDefinitions(c *call, scope string) (int, any, *armError) {
	filter := c.r.URL.Query().Get("$filter")
	out := []any{}
	switch m := roleNameFilterRE.FindStringSubmatch(filter); {
	case filter == "":
		for _, r := range builtInRoles {
			out = append(out, s.roleDefinitionJSON(scope, r))
		}
	case m != nil:
		if r, ok := RoleByName(m[1]); ok {
			out = append(out, s.roleDefinitionJSON(scope, r))
		}
	default:
		return 0, nil, &armError{http.StatusBadRequest, "UnsupportedQuery", fmt.Sprintf("The filter '%s' is not supported; use roleName eq '{name}'.", filter)}
	}
	return http.StatusOK, map[string]any{"value": out}, nil
}
