package registrar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxMessageBytes bounds a request or job body. Service Bus Standard allows 256 KB; a real request
// is under 2 KB, and anything near the limit is a mistake or an attack.
const MaxMessageBytes = 64 << 10

// Limits are the policy a request is validated against: secret lifetimes, and which FHIR
// services and roles a request may ask for.
type Limits struct {
	MaxLifetimeDays     int
	DefaultLifetimeDays int
	FHIR                FHIRPolicy
}

// FHIRPolicy is what fhirAccess may ask for.
type FHIRPolicy struct {
	Services       []FHIRService // the allow-list of FHIR services
	DefaultService string        // the ARM id a grant that names no service gets; "" none
	Roles          []string      // the allow-list of role names (canonical, see FHIRRoles)
}

// FHIRService is an allow-listed FHIR service: its ARM resource id (the role-assignment scope)
// and its base URL (the token audience and where it is read).
type FHIRService struct {
	ID  string
	URL string
}

// Service finds an allow-listed service by ARM id, in any letter case.
func (p FHIRPolicy) Service(id string) (FHIRService, bool) {
	for _, s := range p.Services {
		if strings.EqualFold(strings.TrimSuffix(s.ID, "/"), strings.TrimSuffix(strings.TrimSpace(id), "/")) {
			return s, true
		}
	}
	return FHIRService{}, false
}

// FHIRGrant is what a request asks for on one FHIR service.
type FHIRGrant struct {
	Service FHIRService
	Roles   []string // canonical names, sorted
}

// Sign-in audiences appreg accepts. Personal-account audiences are refused: they cap an app at
// two passwords, which breaks overlapping rotation, and they are wrong for service clients.
const (
	AudienceMyOrg        = "AzureADMyOrg"
	AudienceMultipleOrgs = "AzureADMultipleOrgs"
)

// Reason codes of a rejection. They are API: consumers branch on them.
const (
	RejectTooLarge            = "too_large"
	RejectInvalidJSON         = "invalid_json"
	RejectUnknownField        = "unknown_field"
	RejectWrongType           = "wrong_type"
	RejectMissingField        = "missing_field"
	RejectInvalidRequestID    = "invalid_request_id"
	RejectInvalidClientName   = "invalid_client_name"
	RejectInvalidDisplayName  = "invalid_display_name"
	RejectUnsupportedAudience = "unsupported_sign_in_audience"
	RejectInvalidRedirectURI  = "invalid_redirect_uri"
	RejectTooManyRedirectURIs = "too_many_redirect_uris"
	RejectInvalidLifetime     = "invalid_lifetime"
	RejectTooLong             = "too_long"
	RejectInvalidReason       = "invalid_reason"
	RejectInvalidID           = "invalid_id"
	RejectAppNotManaged       = "app_not_managed"
	RejectAppNotFound         = "app_not_found"
	RejectAppIDMismatch       = "app_id_mismatch"
	RejectSelf                = "self_reference"
	RejectDirectoryRefused    = "directory_refused"
	// Refusals of the directory that retrying cannot change; each has a remedy (remedies).
	RejectQuotaExceeded      = "directory_quota_exceeded"
	RejectClientNameReserved = "client_name_reserved"
	RejectLifetimePolicy     = "secret_lifetime_exceeds_tenant_policy"
	RejectSecretsBlocked     = "secrets_blocked_by_tenant_policy"
	RejectAudiencePolicy     = "sign_in_audience_blocked_by_tenant_policy"
	RejectTooManyPasswords   = "too_many_passwords"
	RejectApplicationTooBig  = "application_too_large"
	RejectVerifyScope        = "unknown_verify_scope"
	// FHIR access.
	RejectFHIRAccessRefused     = "fhir_access_refused"
	RejectFHIRServiceNotAllowed = "fhir_service_not_allowed"
	RejectFHIRRoleNotAllowed    = "fhir_role_not_allowed"
	RejectFHIRServiceRequired   = "fhir_service_required"
	RejectRoleAssignmentLimit   = "role_assignment_limit"
	RejectSecretConflict        = "secret_conflict"
	RejectDuplicateField        = "duplicate_field"
	RejectUnknownCommand        = "unknown_command"
	RejectSessionMismatch       = "session_mismatch"
	RejectInvalidCharacter      = "invalid_character"
	// RejectMoreReasons closes a list of reasons that was cut at MaxReasons: its message says how
	// many more problems were found, so a requester knows the list is not complete.
	RejectMoreReasons = "more_reasons"
)

// MaxReasons bounds the reasons one rejection lists, and maxReasonText each reason's message and
// field, so a request with thousands of bad members still gets an event that fits in a Service
// Bus message (256 KiB) and a log line an operator can read.
const (
	MaxReasons    = 20
	maxReasonText = 300
)

const (
	maxRedirectURIs   = 20
	maxRedirectURILen = 256
	maxDisplayName    = 256
	maxNotes          = 1024
	maxRequestedBy    = 256
)

var (
	clientNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{2,62}$`)
	requestIDRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$`)
	guidRE       = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// Registration is a validated, normalised registration request.
type Registration struct {
	RequestID      string
	ClientName     string
	DisplayName    string
	SignInAudience string
	RedirectURIs   []string
	LifetimeDays   int
	Notes          string
	RequestedBy    string
	// FHIRAccess is the FHIR data-plane access the client should have: the request is the
	// desired state, so roles it no longer names are removed, and no block means none.
	FHIRAccess []FHIRGrant
}

// ParseRegistration validates a registration request body. It reports every problem it finds,
// not just the first, so a requester fixes a bad request in one round trip.
func ParseRegistration(body []byte, lim Limits) (Registration, []Reason) {
	var r Registration
	d, reasons := newFields(body)
	if d == nil {
		return r, reasons
	}
	r.RequestID = d.str("requestId", true)
	r.ClientName = d.str("clientName", true)
	r.DisplayName = strings.TrimSpace(d.str("displayName", false))
	r.SignInAudience = d.str("signInAudience", false)
	r.RedirectURIs = d.strs("redirectUris")
	r.Notes = d.str("notes", false)
	r.RequestedBy = d.str("requestedBy", false)
	r.LifetimeDays = lim.DefaultLifetimeDays
	if sec := d.object("secret"); sec != nil {
		if n, ok := sec.integer("lifetimeDays"); ok {
			r.LifetimeDays = n
		}
		d.adopt(sec)
	}
	r.FHIRAccess = d.fhirAccess(lim.FHIR)
	d.unknown()

	if r.RequestID != "" && !requestIDRE.MatchString(r.RequestID) {
		d.add(RejectInvalidRequestID, "requestId", "must be 1-100 characters of letters, digits, '.', '_', ':' or '-', starting with a letter or digit")
	}
	if r.ClientName != "" && !clientNameRE.MatchString(r.ClientName) {
		d.add(RejectInvalidClientName, "clientName", "must match ^[a-z][a-z0-9-]{2,62}$")
	}
	if r.DisplayName == "" {
		r.DisplayName = r.ClientName
	}
	if utf8.RuneCountInString(r.DisplayName) > maxDisplayName || strings.IndexFunc(r.DisplayName, unicode.IsControl) >= 0 {
		d.add(RejectInvalidDisplayName, "displayName", fmt.Sprintf("must be at most %d characters with no control characters", maxDisplayName))
	}
	switch r.SignInAudience {
	case "":
		r.SignInAudience = AudienceMyOrg
	case AudienceMyOrg, AudienceMultipleOrgs:
	default:
		d.add(RejectUnsupportedAudience, "signInAudience", "must be AzureADMyOrg or AzureADMultipleOrgs; personal-account audiences cap an app at two passwords and are not for service clients")
	}
	if len(r.RedirectURIs) > maxRedirectURIs {
		d.add(RejectTooManyRedirectURIs, "redirectUris", fmt.Sprintf("at most %d redirect URIs", maxRedirectURIs))
	}
	var uris []string
	for i, u := range r.RedirectURIs {
		if msg := checkRedirectURI(u); msg != "" {
			d.add(RejectInvalidRedirectURI, fmt.Sprintf("redirectUris[%d]", i), msg)
			continue
		}
		if !slices.Contains(uris, u) {
			uris = append(uris, u)
		}
	}
	r.RedirectURIs = uris
	if r.LifetimeDays < 1 || r.LifetimeDays > lim.MaxLifetimeDays {
		d.add(RejectInvalidLifetime, "secret.lifetimeDays", fmt.Sprintf("must be between 1 and %d days", lim.MaxLifetimeDays))
	}
	if len(r.Notes) > maxNotes {
		d.add(RejectTooLong, "notes", fmt.Sprintf("at most %d bytes", maxNotes))
	}
	if len(r.RequestedBy) > maxRequestedBy {
		d.add(RejectTooLong, "requestedBy", fmt.Sprintf("at most %d bytes", maxRequestedBy))
	}
	return r, capReasons(d.reasons)
}

func checkRedirectURI(s string) string {
	if len(s) > maxRedirectURILen {
		return fmt.Sprintf("at most %d characters", maxRedirectURILen)
	}
	if strings.Contains(s, "*") {
		return "wildcards are not allowed"
	}
	if strings.Contains(s, "#") {
		return "fragments are not allowed"
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "must be an absolute URL"
	}
	if u.User != nil {
		return "must not contain user information"
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && u.Hostname() == "localhost":
	default:
		return "must use https:// (http:// only for localhost)"
	}
	return ""
}

// ParseRotationJob validates a rotation job body.
func ParseRotationJob(body []byte) (RotationJob, []Reason) {
	var j RotationJob
	d, reasons := newFields(body)
	if d == nil {
		return j, reasons
	}
	j.ClientName = d.str("clientName", true)
	j.AppID = d.str("appId", false)
	j.KeyID = d.str("keyId", false)
	j.Reason = d.str("reason", false)
	j.RevokeOld = d.boolean("revokeOld")
	if at := d.str("requestedAt", false); at != "" {
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			d.add(RejectWrongType, "requestedAt", "must be an RFC 3339 timestamp")
		}
		j.RequestedAt = t
	}
	d.unknown()
	if j.ClientName != "" && !clientNameRE.MatchString(j.ClientName) {
		d.add(RejectInvalidClientName, "clientName", "must match ^[a-z][a-z0-9-]{2,62}$")
	}
	for field, v := range map[string]string{"appId": j.AppID, "keyId": j.KeyID} {
		if v != "" && !guidRE.MatchString(v) {
			d.add(RejectInvalidID, field, "must be a GUID")
		}
	}
	switch j.Reason {
	case "":
		j.Reason = ReasonOnDemand
	case ReasonNearExpiry, ReasonOnDemand:
	case ReasonCompromised:
		j.RevokeOld = true
	default:
		d.add(RejectInvalidReason, "reason", "must be near-expiry, on-demand or compromised")
	}
	slices.SortFunc(d.reasons, func(a, b Reason) int { return strings.Compare(a.Field, b.Field) })
	return j, capReasons(d.reasons)
}

// fields decodes a JSON object one member at a time so that every problem — unknown member, wrong
// type, missing member — becomes its own machine-readable Reason naming the field.
type fields struct {
	prefix  string
	raw     map[string]json.RawMessage
	present map[string]bool
	reasons []Reason
}

func newFields(body []byte) (*fields, []Reason) {
	if len(body) > MaxMessageBytes {
		return nil, []Reason{{Code: RejectTooLarge, Message: fmt.Sprintf("message is %d bytes; the limit is %d", len(body), MaxMessageBytes)}}
	}
	if !utf8.Valid(body) {
		return nil, []Reason{{Code: RejectInvalidJSON, Message: "body is not valid UTF-8"}}
	}
	dups, err := scanStrict(body)
	if err != nil {
		return nil, []Reason{{Code: RejectInvalidJSON, Message: "body must hold exactly one JSON object: " + err.Error()}}
	}
	if len(dups) > 0 {
		var reasons []Reason
		for _, d := range dups {
			reasons = append(reasons, Reason{Code: RejectDuplicateField, Field: d, Message: "appears more than once; a request must say each thing once"})
		}
		return nil, capReasons(reasons)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return nil, []Reason{{Code: RejectInvalidJSON, Message: "body must be a JSON object"}}
	}
	return &fields{raw: raw, present: map[string]bool{}}, nil
}

// capReasons keeps the first MaxReasons-1 reasons, clipped, and sums up the rest in one more.
func capReasons(reasons []Reason) []Reason {
	if len(reasons) == 0 {
		return nil
	}
	out := make([]Reason, 0, min(len(reasons), MaxReasons))
	for i, r := range reasons {
		if i == MaxReasons-1 && len(reasons) > MaxReasons {
			out = append(out, Reason{Code: RejectMoreReasons, Message: fmt.Sprintf("and %d more problems not listed", len(reasons)-i)})
			break
		}
		r.Field, r.Message = clip(r.Field, maxReasonText), clip(r.Message, maxReasonText)
		out = append(out, r)
	}
	return out
}

func (d *fields) add(code, field, msg string) {
	d.reasons = append(d.reasons, Reason{Code: code, Field: field, Message: msg})
}

func (d *fields) take(name string) (json.RawMessage, bool) {
	v, ok := d.raw[name]
	d.present[name] = true
	if !ok || string(v) == "null" {
		return nil, false
	}
	return v, true
}

func (d *fields) str(name string, required bool) string {
	v, ok := d.take(name)
	if !ok {
		if required {
			d.add(RejectMissingField, d.prefix+name, "is required")
		}
		return ""
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		d.add(RejectWrongType, d.prefix+name, "must be a string")
		return ""
	}
	if required && strings.TrimSpace(s) == "" {
		d.add(RejectMissingField, d.prefix+name, "must not be empty")
	}
	d.checkCharacters(d.prefix+name, s)
	return s
}

// replacementChar is what the Functions host puts in place of bytes that are not UTF-8 when it
// hands a message body to the handler as a string. No real request contains it, so its presence
// means the sender's bytes were damaged, and acting on the damaged text would be a guess.
const replacementChar = '\uFFFD'

func (d *fields) checkCharacters(field, s string) {
	if strings.ContainsRune(s, replacementChar) {
		d.add(RejectInvalidCharacter, field, "contains U+FFFD, the replacement character: the message body was not valid UTF-8 when it was sent (the Functions host replaces such bytes); send the request as UTF-8")
	}
}

func (d *fields) strs(name string) []string {
	v, ok := d.take(name)
	if !ok {
		return nil
	}
	var ss []string
	if err := json.Unmarshal(v, &ss); err != nil {
		d.add(RejectWrongType, d.prefix+name, "must be an array of strings")
		return nil
	}
	for i, s := range ss {
		d.checkCharacters(fmt.Sprintf("%s%s[%d]", d.prefix, name, i), s)
	}
	return ss
}

func (d *fields) boolean(name string) bool {
	v, ok := d.take(name)
	if !ok {
		return false
	}
	var b bool
	if err := json.Unmarshal(v, &b); err != nil {
		d.add(RejectWrongType, d.prefix+name, "must be true or false")
	}
	return b
}

func (d *fields) integer(name string) (int, bool) {
	v, ok := d.take(name)
	if !ok {
		return 0, false
	}
	var n json.Number
	// json.Number also accepts a quoted number; a lifetime sent as a string is a wrong type.
	if c := v[0]; c != '-' && (c < '0' || c > '9') {
		d.add(RejectWrongType, d.prefix+name, "must be a whole number")
		return 0, false
	}
	if err := json.Unmarshal(v, &n); err != nil || strings.ContainsAny(n.String(), ".eE") {
		d.add(RejectWrongType, d.prefix+name, "must be a whole number")
		return 0, false
	}
	i, err := n.Int64()
	if err != nil || i > 1<<31 || i < -(1<<31) {
		d.add(RejectWrongType, d.prefix+name, "is out of range")
		return 0, false
	}
	return int(i), true
}

// fhirAccess reads "fhirAccess": one grant {"service": "<ARM id>", "roles": [...]}, or an array
// of them, each judged against the policy.
func (d *fields) fhirAccess(p FHIRPolicy) []FHIRGrant {
	v, ok := d.take("fhirAccess")
	if !ok {
		return nil
	}
	var items []json.RawMessage
	if t := bytes.TrimSpace(v); len(t) > 0 && t[0] == '[' {
		if err := json.Unmarshal(v, &items); err != nil {
			d.add(RejectWrongType, d.prefix+"fhirAccess", "must be an object or an array of objects")
			return nil
		}
	} else {
		items = []json.RawMessage{v}
	}
	var grants []FHIRGrant
	seen := map[string]bool{}
	for i, raw := range items {
		path := fmt.Sprintf("fhirAccess[%d]", i)
		if len(items) == 1 && bytes.TrimSpace(v)[0] != '[' {
			path = "fhirAccess"
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil || m == nil {
			d.add(RejectWrongType, path, "must be an object with service and roles")
			continue
		}
		g := &fields{prefix: path + ".", raw: m, present: map[string]bool{}}
		id := strings.TrimSpace(g.str("service", false))
		names := g.strs("roles")
		g.unknown()
		d.reasons = append(d.reasons, g.reasons...)
		if id == "" {
			id = p.DefaultService
		}
		svc, ok := p.Service(id)
		switch {
		case id == "":
			d.add(RejectFHIRServiceRequired, path+".service", "name the ARM id of the FHIR service; this deployment has no default")
			continue
		case !ok:
			d.add(RejectFHIRServiceNotAllowed, path+".service", fmt.Sprintf("%q is not a FHIR service this deployment may grant access to", clip(id, 150)))
			continue
		case seen[strings.ToLower(svc.ID)]:
			d.add(RejectDuplicateField, path+".service", "names a FHIR service another grant names already")
			continue
		}
		seen[strings.ToLower(svc.ID)] = true
		if len(names) == 0 {
			d.add(RejectMissingField, path+".roles", "name at least one FHIR role")
			continue
		}
		var roles []string
		for j, n := range names {
			canon := FHIRRoleName(n)
			if canon == "" || !slices.Contains(p.Roles, canon) {
				d.add(RejectFHIRRoleNotAllowed, fmt.Sprintf("%s.roles[%d]", path, j), fmt.Sprintf("%q is not a role this deployment grants; allowed: %s", clip(n, 60), strings.Join(p.Roles, ", ")))
				continue
			}
			if !slices.Contains(roles, canon) {
				roles = append(roles, canon)
			}
		}
		slices.Sort(roles)
		grants = append(grants, FHIRGrant{Service: svc, Roles: roles})
	}
	return grants
}

func (d *fields) object(name string) *fields {
	v, ok := d.take(name)
	if !ok {
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil {
		d.add(RejectWrongType, d.prefix+name, "must be an object")
		return nil
	}
	return &fields{prefix: d.prefix + name + ".", raw: raw, present: map[string]bool{}}
}

// adopt folds a nested object's findings, including its unknown members, into d.
func (d *fields) adopt(sub *fields) {
	sub.unknown()
	d.reasons = append(d.reasons, sub.reasons...)
}

func (d *fields) unknown() {
	var names []string
	for k := range d.raw {
		if !d.present[k] {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		d.add(RejectUnknownField, d.prefix+k, "is not a known field")
	}
}
