package graphemu

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// defaultPolicyID is the id Graph gives the tenant's default app management policy.
const defaultPolicyID = "00000000-0000-0000-0000-000000000000"

// The Graph app roles that read and write app management policies.
const (
	rolePolicyRead  = "Policy.Read.All"
	rolePolicyWrite = "Policy.ReadWrite.ApplicationConfiguration"
)

// policyProps are the properties of tenantAppManagementPolicy, in the order Graph writes them.
var policyProps = []string{"id", "displayName", "description", "isEnabled", "applicationRestrictions", "servicePrincipalRestrictions"}

// defaultPolicy is the tenant's default app management policy as a new tenant has it: disabled,
// restricting nothing.
func defaultPolicy() map[string]json.RawMessage {
	empty := json.RawMessage(`{"passwordCredentials":[],"keyCredentials":[]}`)
	return map[string]json.RawMessage{
		"id":                           jsonString(defaultPolicyID),
		"displayName":                  jsonString("Default app management tenant policy"),
		"description":                  jsonString("Default tenant policy that enforces app management restrictions on applications and service principals. To apply policy to targeted resources, create a new policy under appManagementPolicies collection."),
		"isEnabled":                    json.RawMessage(`false`),
		"applicationRestrictions":      empty,
		"servicePrincipalRestrictions": empty,
	}
}

// restrictions is the part of a policy's applicationRestrictions that governs passwords.
type restrictions struct {
	PasswordCredentials []credentialRestriction `json:"passwordCredentials"`
	KeyCredentials      []json.RawMessage       `json:"keyCredentials"`
}

// credentialRestriction is a passwordCredentialConfiguration.
type credentialRestriction struct {
	RestrictionType                     string  `json:"restrictionType"`
	State                               *string `json:"state,omitempty"`
	MaxLifetime                         *string `json:"maxLifetime"`
	RestrictForAppsCreatedAfterDateTime *string `json:"restrictForAppsCreatedAfterDateTime"`
}

var passwordRestrictionTypes = []string{"passwordAddition", "passwordLifetime", "symmetricKeyAddition", "symmetricKeyLifetime", "customPasswordAddition", "unknownFutureValue"}

// validRestrictions checks an applicationRestrictions or servicePrincipalRestrictions value.
func validRestrictions(v json.RawMessage) error {
	var r restrictions
	if err := strictJSON(v, &r); err != nil {
		return fmt.Errorf("invalid restrictions: %v", err)
	}
	for _, c := range r.PasswordCredentials {
		if !slices.Contains(passwordRestrictionTypes, c.RestrictionType) {
			return fmt.Errorf("invalid restrictionType '%s'", c.RestrictionType)
		}
		if c.State != nil && *c.State != "enabled" && *c.State != "disabled" {
			return fmt.Errorf("invalid state '%s'", *c.State)
		}
		if c.MaxLifetime != nil {
			if _, err := parseISODuration(*c.MaxLifetime); err != nil {
				return err
			}
		} else if strings.HasSuffix(c.RestrictionType, "Lifetime") {
			return fmt.Errorf("maxLifetime is required for restrictionType '%s'", c.RestrictionType)
		}
		if t := c.RestrictForAppsCreatedAfterDateTime; t != nil {
			if _, err := time.Parse(time.RFC3339Nano, *t); err != nil {
				return fmt.Errorf("invalid restrictForAppsCreatedAfterDateTime '%s'", *t)
			}
		}
	}
	return nil
}

func strictJSON(v json.RawMessage, out any) error {
	dec := json.NewDecoder(strings.NewReader(string(v)))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
}

// checkPolicy applies the tenant's default app management policy to a new password on a, under
// s.mu: Entra refuses addPassword with 400 CredentialTypeNotAllowedAsPerAppPolicy when the policy
// blocks passwords and CredentialInvalidLifetimeAsPerAppPolicy when the password outlives
// maxLifetime, for apps created after the restriction's date.
func (s *Server) checkPolicy(a *application, start, end time.Time) *reply {
	var enabled bool
	if json.Unmarshal(s.policy["isEnabled"], &enabled) != nil || !enabled {
		return nil
	}
	var r restrictions
	if json.Unmarshal(s.policy["applicationRestrictions"], &r) != nil {
		return nil
	}
	created, _ := time.Parse(layoutCreated, str(a.props, "createdDateTime"))
	for _, c := range r.PasswordCredentials {
		if c.State != nil && *c.State == "disabled" {
			continue
		}
		if t := c.RestrictForAppsCreatedAfterDateTime; t != nil {
			if after, err := time.Parse(time.RFC3339Nano, *t); err == nil && !created.After(after) {
				continue
			}
		}
		switch c.RestrictionType {
		case "passwordAddition":
			rep := fail(http.StatusBadRequest, "CredentialTypeNotAllowedAsPerAppPolicy",
				"Credential type not allowed as per assigned policy %s.", defaultPolicyID)
			return &rep
		case "passwordLifetime":
			if c.MaxLifetime == nil {
				continue
			}
			if max, err := parseISODuration(*c.MaxLifetime); err == nil && end.Sub(start) > max {
				rep := fail(http.StatusBadRequest, "CredentialInvalidLifetimeAsPerAppPolicy",
					"Credential lifetime exceeds the max value allowed as per assigned policy %s.", defaultPolicyID)
				return &rep
			}
		}
	}
	return nil
}

var isoDuration = regexp.MustCompile(`^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// parseISODuration reads the ISO 8601 durations policies use (P90D, P1Y, PT12H), counting a year
// as 365 days and a month as 30.
func parseISODuration(v string) (time.Duration, error) {
	m := isoDuration.FindStringSubmatch(v)
	if m == nil || v == "P" || strings.HasSuffix(v, "T") {
		return 0, fmt.Errorf("invalid ISO 8601 duration '%s'", v)
	}
	units := []time.Duration{365 * 24 * time.Hour, 30 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour, time.Hour, time.Minute, time.Second}
	var d time.Duration
	for i, u := range units {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.ParseFloat(m[i+1], 64)
		if err != nil {
			return 0, fmt.Errorf("invalid ISO 8601 duration '%s'", v)
		}
		d += time.Duration(n * float64(u))
	}
	return d, nil
}

// formatISODays writes a whole number of days as an ISO 8601 duration, P90D.
func formatISODays(d time.Duration) string {
	return fmt.Sprintf("P%dD", int64(d/(24*time.Hour)))
}

func (s *Server) renderPolicy() ordered {
	out := make(ordered, 0, len(policyProps))
	for _, k := range policyProps {
		out = append(out, kv{k, s.policy[k]})
	}
	return out
}

func (s *Server) getPolicy(c *call) reply {
	if p := c.perms(); !p.policyRead {
		return errDenied()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return ok(http.StatusOK, append(ordered{{"@odata.context", c.base() + "/$metadata#policies/defaultAppManagementPolicy/$entity"}}, s.renderPolicy()...))
}

// updatePolicy is PATCH /policies/defaultAppManagementPolicy: each property sent replaces the
// stored one, complex ones whole, as OData PATCH does.
func (s *Server) updatePolicy(c *call) reply {
	if p := c.perms(); !p.policyWrite {
		return errDenied()
	}
	body, rep := decodeObject(c.body, false)
	if rep != nil {
		return *rep
	}
	if rep := validPolicyPatch(body); rep != nil {
		return *rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range body {
		s.policy[canonicalPolicyProp(k)] = v
	}
	s.log.Info("default app management policy updated", "enabled", string(s.policy["isEnabled"]))
	return noContent()
}

func canonicalPolicyProp(k string) string {
	for _, p := range policyProps {
		if strings.EqualFold(p, k) {
			return p
		}
	}
	return k
}

func validPolicyPatch(body map[string]json.RawMessage) *reply {
	for k, v := range body {
		if strings.HasPrefix(k, "@") {
			delete(body, k) // @odata.type and other annotations
			continue
		}
		bad := func(format string, args ...any) *reply {
			rep := errBadRequest("Invalid value specified for property '%s' of resource 'TenantAppManagementPolicy': %s", k, fmt.Sprintf(format, args...))
			return &rep
		}
		switch canonicalPolicyProp(k) {
		case "isEnabled":
			var b bool
			if json.Unmarshal(v, &b) != nil {
				return bad("not a boolean")
			}
		case "displayName", "description":
			var str string
			if json.Unmarshal(v, &str) != nil {
				return bad("not a string")
			}
		case "applicationRestrictions", "servicePrincipalRestrictions":
			if err := validRestrictions(v); err != nil {
				return bad("%v", err)
			}
		case "id":
			rep := errBadRequest("Property 'id' is read-only and cannot be set.")
			return &rep
		default:
			rep := fail(http.StatusBadRequest, "BadRequest", "Property '%s' does not exist on type 'microsoft.graph.tenantAppManagementPolicy'.", k)
			return &rep
		}
	}
	return nil
}

// AppPolicy is the part of the tenant's default app management policy the emulator enforces on
// addPassword, in the form of the /_emu/graph/policy control.
type AppPolicy struct {
	// Enabled is the policy's isEnabled; a disabled policy restricts nothing.
	Enabled bool `json:"enabled"`
	// MaxPasswordLifetime caps endDateTime - startDateTime of new passwords; 0: no cap. On the
	// wire an ISO 8601 duration, "P90D".
	MaxPasswordLifetime time.Duration `json:"-"`
	// BlockPasswords refuses every new password (restrictionType passwordAddition).
	BlockPasswords bool `json:"blockPasswordAddition"`
}

type appPolicyJSON struct {
	Enabled             bool   `json:"enabled"`
	MaxPasswordLifetime string `json:"maxPasswordLifetime,omitempty"`
	BlockPasswords      bool   `json:"blockPasswordAddition"`
}

// MarshalJSON writes the control's wire form.
func (p AppPolicy) MarshalJSON() ([]byte, error) {
	j := appPolicyJSON{Enabled: p.Enabled, BlockPasswords: p.BlockPasswords}
	if p.MaxPasswordLifetime > 0 {
		j.MaxPasswordLifetime = formatISODays(p.MaxPasswordLifetime)
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the control's wire form.
func (p *AppPolicy) UnmarshalJSON(b []byte) error {
	var j appPolicyJSON
	if err := strictJSON(b, &j); err != nil {
		return err
	}
	*p = AppPolicy{Enabled: j.Enabled, BlockPasswords: j.BlockPasswords}
	if j.MaxPasswordLifetime != "" {
		d, err := parseISODuration(j.MaxPasswordLifetime)
		if err != nil {
			return err
		}
		p.MaxPasswordLifetime = d
	}
	return nil
}

// SetAppManagementPolicy sets the tenant's default app management policy, as an administrator
// would with PATCH /policies/defaultAppManagementPolicy; its restrictions apply to every app.
func (s *Server) SetAppManagementPolicy(p AppPolicy) error {
	if p.MaxPasswordLifetime < 0 {
		return fmt.Errorf("graph: negative maxPasswordLifetime")
	}
	var creds []credentialRestriction
	if p.BlockPasswords {
		creds = append(creds, credentialRestriction{RestrictionType: "passwordAddition"})
	}
	if p.MaxPasswordLifetime > 0 {
		// Sub-day lifetimes are written in seconds, so they round-trip.
		v := formatISODays(p.MaxPasswordLifetime)
		if p.MaxPasswordLifetime%(24*time.Hour) != 0 {
			v = fmt.Sprintf("PT%dS", int64(p.MaxPasswordLifetime/time.Second))
		}
		creds = append(creds, credentialRestriction{RestrictionType: "passwordLifetime", MaxLifetime: &v})
	}
	if creds == nil {
		creds = []credentialRestriction{}
	}
	r, err := json.Marshal(restrictions{PasswordCredentials: creds, KeyCredentials: []json.RawMessage{}})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policy["isEnabled"] = jsonValue(p.Enabled)
	s.policy["applicationRestrictions"] = r
	return nil
}

// AppManagementPolicy reads back what SetAppManagementPolicy or a Graph PATCH set.
func (s *Server) AppManagementPolicy() AppPolicy {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p AppPolicy
	_ = json.Unmarshal(s.policy["isEnabled"], &p.Enabled)
	var r restrictions
	_ = json.Unmarshal(s.policy["applicationRestrictions"], &r)
	for _, c := range r.PasswordCredentials {
		if c.State != nil && *c.State == "disabled" {
			continue
		}
		switch c.RestrictionType {
		case "passwordAddition":
			p.BlockPasswords = true
		case "passwordLifetime":
			if c.MaxLifetime != nil {
				if d, err := parseISODuration(*c.MaxLifetime); err == nil && (p.MaxPasswordLifetime == 0 || d < p.MaxPasswordLifetime) {
					p.MaxPasswordLifetime = d
				}
			}
		}
	}
	return p
}
