package graphemu

import (
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// kind is a property's JSON shape; a write with another shape is a 400.
type kind uint8

const (
	kString  kind = iota // string or null
	kStrings             // array of strings
	kBool                // true, false or null
	kObject              // object, merged into the stored one on PATCH (OData complex type)
	kArray               // array of anything
	kAny
)

type access uint8

const (
	writable   access = iota
	readOnly          // set by the service
	createOnly        // settable when the object is created (alternate keys)
)

// filterOps says which $filter forms a property supports.
type filterOps uint8

const (
	filterNone       filterOps = 0
	filterEq         filterOps = 1 << iota // eq, ne, in
	filterStartsWith                       // startswith, endswith
	filterAny                              // collection/any(x:x eq 'v')
)

// prop is one property of an entity type, in the order Graph writes it.
type prop struct {
	name   string
	kind   kind
	def    string // default JSON value of a new object
	access access
	filter filterOps
	// valid checks a written value beyond its shape.
	valid func(json.RawMessage) bool
}

// schema is the subset of an entity type the emulator models.
type schema struct {
	typeName string // microsoft.graph.<typeName>
	resource string // the name in Graph's validation messages
	set      string // the entity set
	props    []*prop
	byName   map[string]*prop // lower-case name
}

func newSchema(typeName, resource, set string, props []*prop) *schema {
	s := &schema{typeName: typeName, resource: resource, set: set, props: props, byName: map[string]*prop{}}
	for _, p := range props {
		s.byName[strings.ToLower(p.name)] = p
	}
	return s
}

// lookup finds a property case-insensitively, as Graph's directory does.
func (s *schema) lookup(name string) *prop { return s.byName[strings.ToLower(name)] }

func (s *schema) defaults() map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, len(s.props))
	for _, p := range s.props {
		m[p.name] = json.RawMessage(p.def)
	}
	return m
}

// render writes an object's properties in schema order, only the selected ones when sel is set.
func (s *schema) render(props map[string]json.RawMessage, sel []string, override map[string]any) ordered {
	out := make(ordered, 0, len(s.props))
	for _, p := range s.props {
		if sel != nil && !slices.Contains(sel, p.name) {
			continue
		}
		if v, ok := override[p.name]; ok {
			out = append(out, kv{p.name, v})
			continue
		}
		v := props[p.name]
		if v == nil {
			v = json.RawMessage("null")
		}
		out = append(out, kv{p.name, v})
	}
	return out
}

// apply validates a POST or PATCH body and merges it into props, all or nothing. creating is true
// for POST and for an upsert that creates.
func (s *schema) apply(props, body map[string]json.RawMessage, creating bool) (map[string]json.RawMessage, *reply) {
	next := make(map[string]json.RawMessage, len(props))
	for k, v := range props {
		next[k] = v
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys) // a stable first error
	for _, k := range keys {
		v := body[k]
		if strings.HasPrefix(k, "@odata.") {
			continue // kiota writes @odata.type; annotations are not properties
		}
		p := s.lookup(k)
		if p == nil {
			r := errBadRequest("Property '%s' does not exist as a declared property or extension property.", k)
			return nil, &r
		}
		if p.name == "passwordCredentials" {
			// Graph refuses passwords in create/update bodies; addPassword is the only way in.
			if !isEmptyArray(v) {
				r := errBadRequest("Adding passwordCredentials through a create or update request is not supported. Use addPassword.")
				return nil, &r
			}
			continue
		}
		switch p.access {
		case readOnly:
			r := errBadRequest("Property '%s' is read-only and cannot be set.", p.name)
			return nil, &r
		case createOnly:
			if !creating && !jsonEqual(props[p.name], v) {
				r := errBadRequest("Property '%s' is read-only and cannot be set.", p.name)
				return nil, &r
			}
		}
		if !hasKind(p.kind, v) || (p.valid != nil && !p.valid(v)) {
			r := errInvalidValue(p.name, s.resource)
			return nil, &r
		}
		if p.kind == kObject {
			merged, bad := mergeObject(next[p.name], v, p.name)
			if bad != "" {
				r := errBadRequest("Property '%s' does not exist as a declared property or extension property.", bad)
				return nil, &r
			}
			if p.valid != nil && !p.valid(merged) {
				r := errInvalidValue(p.name, s.resource)
				return nil, &r
			}
			next[p.name] = merged
			continue
		}
		next[p.name] = compact(v)
	}
	return next, nil
}

func hasKind(k kind, v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return false
	}
	isNull := string(v) == "null"
	switch k {
	case kString:
		return isNull || v[0] == '"'
	case kStrings:
		var ss []string
		if v[0] != '[' || json.Unmarshal(v, &ss) != nil {
			return false
		}
		var raw []json.RawMessage
		json.Unmarshal(v, &raw)
		for _, r := range raw {
			if string(bytes.TrimSpace(r)) == "null" {
				return false
			}
		}
		return true
	case kBool:
		return isNull || string(v) == "true" || string(v) == "false"
	case kObject:
		return isNull || v[0] == '{'
	case kArray:
		return v[0] == '['
	}
	return true
}

// mergeObject applies PATCH semantics to a complex property: named sub-properties replace or
// merge into the stored ones, collections are replaced whole. A sub-property the stored shape does
// not have is refused (its dotted name is returned) unless the stored value has no shape yet.
func mergeObject(base, patch json.RawMessage, path string) (json.RawMessage, string) {
	if string(bytes.TrimSpace(patch)) == "null" {
		return json.RawMessage("null"), ""
	}
	baseKeys, baseVals := decodeOrdered(base)
	patchKeys, patchVals := decodeOrdered(patch)
	shaped := len(baseKeys) > 0
	for _, k := range patchKeys {
		pv := patchVals[k]
		if strings.HasPrefix(k, "@odata.") {
			continue
		}
		bv, known := baseVals[k]
		if !known {
			if shaped {
				return nil, path + "." + k
			}
			baseKeys = append(baseKeys, k)
		}
		if known && isObject(bv) && isObject(pv) {
			m, bad := mergeObject(bv, pv, path+"."+k)
			if bad != "" {
				return nil, bad
			}
			baseVals[k] = m
			continue
		}
		baseVals[k] = compact(pv)
	}
	out := make(ordered, 0, len(baseKeys))
	for _, k := range baseKeys {
		out = append(out, kv{k, baseVals[k]})
	}
	b, _ := json.Marshal(out)
	return b, ""
}

// decodeOrdered reads a JSON object's members in document order; anything else yields nothing.
func decodeOrdered(raw json.RawMessage) ([]string, map[string]json.RawMessage) {
	vals := map[string]json.RawMessage{}
	if !isObject(raw) {
		return nil, vals
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.Token() // {
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return keys, vals
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return keys, vals
		}
		if _, dup := vals[k]; !dup {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	return keys, vals
}

func isObject(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && v[0] == '{'
}

func isEmptyArray(v json.RawMessage) bool {
	var a []json.RawMessage
	return json.Unmarshal(v, &a) == nil && len(a) == 0 || string(bytes.TrimSpace(v)) == "null"
}

func compact(v json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return v
	}
	return b.Bytes()
}

func jsonEqual(a, b json.RawMessage) bool {
	return bytes.Equal(compact(a), compact(b))
}

// str reads a string property; null and absent read as "".
func str(props map[string]json.RawMessage, name string) string {
	var s string
	json.Unmarshal(props[name], &s)
	return s
}

func strs(props map[string]json.RawMessage, name string) []string {
	var ss []string
	json.Unmarshal(props[name], &ss)
	return ss
}

// Validators for the properties whose values Graph checks.

func validDisplayName(v json.RawMessage) bool {
	var s string
	return json.Unmarshal(v, &s) == nil && s != "" && len([]rune(s)) <= 256
}

func validNonEmptyString(v json.RawMessage) bool {
	var s string
	return json.Unmarshal(v, &s) == nil && s != ""
}

var signInAudiences = []string{"AzureADMyOrg", "AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount"}

func validSignInAudience(v json.RawMessage) bool {
	var s string
	return json.Unmarshal(v, &s) == nil && slices.Contains(signInAudiences, s)
}

// personalAccounts reports whether an audience admits Microsoft accounts, which limits an app to
// two passwords.
func personalAccounts(audience string) bool {
	return audience == "AzureADandPersonalMicrosoftAccount" || audience == "PersonalMicrosoftAccount"
}

func validTags(v json.RawMessage) bool {
	var ss []string
	if json.Unmarshal(v, &ss) != nil {
		return false
	}
	for _, s := range ss {
		if s == "" || len(s) > 256 {
			return false
		}
	}
	return true
}

// validWeb checks web.redirectUris as Entra does for web platforms: absolute https URIs, or http
// on a loopback host, no fragment, at most 256 characters each.
func validWeb(v json.RawMessage) bool {
	var web struct {
		RedirectURIs []string `json:"redirectUris"`
	}
	if string(bytes.TrimSpace(v)) == "null" {
		return true
	}
	if json.Unmarshal(v, &web) != nil {
		return false
	}
	for _, raw := range web.RedirectURIs {
		u, err := url.Parse(raw)
		if err != nil || len(raw) > 256 || u.Fragment != "" || strings.Contains(raw, "#") || u.Host == "" {
			return false
		}
		switch u.Scheme {
		case "https":
		case "http":
			if h := u.Hostname(); h != "localhost" && h != "127.0.0.1" && h != "::1" {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// appSchema is microsoft.graph.application as Graph v1.0 returns it for a new app.
var appSchema = newSchema("application", "Application", "applications", []*prop{
	{name: "id", kind: kString, def: `null`, access: readOnly, filter: filterEq},
	{name: "deletedDateTime", kind: kString, def: `null`, access: readOnly},
	{name: "appId", kind: kString, def: `null`, access: readOnly, filter: filterEq},
	{name: "applicationTemplateId", kind: kString, def: `null`, access: readOnly},
	{name: "disabledByMicrosoftStatus", kind: kString, def: `null`, access: readOnly},
	{name: "createdDateTime", kind: kString, def: `null`, access: readOnly},
	{name: "displayName", kind: kString, def: `null`, filter: filterEq | filterStartsWith, valid: validDisplayName},
	{name: "description", kind: kString, def: `null`, filter: filterEq | filterStartsWith},
	{name: "groupMembershipClaims", kind: kString, def: `null`},
	{name: "identifierUris", kind: kStrings, def: `[]`, filter: filterAny},
	{name: "isDeviceOnlyAuthSupported", kind: kBool, def: `null`},
	{name: "isFallbackPublicClient", kind: kBool, def: `null`},
	{name: "nativeAuthenticationApisEnabled", kind: kString, def: `null`},
	{name: "notes", kind: kString, def: `null`},
	{name: "publisherDomain", kind: kString, def: `null`, access: readOnly, filter: filterEq | filterStartsWith},
	{name: "serviceManagementReference", kind: kString, def: `null`, filter: filterEq},
	{name: "signInAudience", kind: kString, def: `"AzureADandPersonalMicrosoftAccount"`, filter: filterEq, valid: validSignInAudience},
	{name: "tags", kind: kStrings, def: `[]`, filter: filterAny, valid: validTags},
	{name: "tokenEncryptionKeyId", kind: kString, def: `null`},
	{name: "uniqueName", kind: kString, def: `null`, access: createOnly, filter: filterEq | filterStartsWith, valid: validNonEmptyString},
	{name: "samlMetadataUrl", kind: kString, def: `null`},
	{name: "defaultRedirectUri", kind: kString, def: `null`},
	{name: "certification", kind: kObject, def: `null`, access: readOnly},
	{name: "optionalClaims", kind: kObject, def: `null`},
	{name: "requestSignatureVerification", kind: kObject, def: `null`},
	{name: "addIns", kind: kArray, def: `[]`},
	{name: "api", kind: kObject, def: `{"acceptMappedClaims":null,"knownClientApplications":[],"requestedAccessTokenVersion":null,"oauth2PermissionScopes":[],"preAuthorizedApplications":[]}`},
	{name: "appRoles", kind: kArray, def: `[]`},
	{name: "info", kind: kObject, def: `{"logoUrl":null,"marketingUrl":null,"privacyStatementUrl":null,"supportUrl":null,"termsOfServiceUrl":null}`},
	{name: "keyCredentials", kind: kArray, def: `[]`},
	{name: "parentalControlSettings", kind: kObject, def: `{"countriesBlockedForMinors":[],"legalAgeGroupRule":"Allow"}`},
	{name: "passwordCredentials", kind: kArray, def: `[]`},
	{name: "publicClient", kind: kObject, def: `{"redirectUris":[]}`},
	{name: "requiredResourceAccess", kind: kArray, def: `[]`},
	{name: "verifiedPublisher", kind: kObject, def: `{"displayName":null,"verifiedPublisherId":null,"addedDateTime":null}`, access: readOnly},
	{name: "web", kind: kObject, def: `{"homePageUrl":null,"logoutUrl":null,"redirectUris":[],"implicitGrantSettings":{"enableAccessTokenIssuance":false,"enableIdTokenIssuance":false},"redirectUriSettings":[]}`, valid: validWeb},
	{name: "spa", kind: kObject, def: `{"redirectUris":[]}`},
})

// spSchema is microsoft.graph.servicePrincipal as Graph v1.0 returns it.
var spSchema = newSchema("servicePrincipal", "ServicePrincipal", "servicePrincipals", []*prop{
	{name: "id", kind: kString, def: `null`, access: readOnly, filter: filterEq},
	{name: "deletedDateTime", kind: kString, def: `null`, access: readOnly},
	{name: "accountEnabled", kind: kBool, def: `true`, filter: filterEq},
	{name: "alternativeNames", kind: kStrings, def: `[]`, filter: filterAny},
	{name: "appDisplayName", kind: kString, def: `null`, access: readOnly, filter: filterEq | filterStartsWith},
	{name: "appDescription", kind: kString, def: `null`, access: readOnly},
	{name: "appId", kind: kString, def: `null`, access: createOnly, filter: filterEq, valid: validNonEmptyString},
	{name: "applicationTemplateId", kind: kString, def: `null`, access: readOnly},
	{name: "appOwnerOrganizationId", kind: kString, def: `null`, access: readOnly, filter: filterEq},
	{name: "appRoleAssignmentRequired", kind: kBool, def: `false`},
	{name: "description", kind: kString, def: `null`},
	{name: "disabledByMicrosoftStatus", kind: kString, def: `null`, access: readOnly},
	{name: "displayName", kind: kString, def: `null`, filter: filterEq | filterStartsWith, valid: validDisplayName},
	{name: "homepage", kind: kString, def: `null`},
	{name: "loginUrl", kind: kString, def: `null`},
	{name: "logoutUrl", kind: kString, def: `null`},
	{name: "notes", kind: kString, def: `null`},
	{name: "notificationEmailAddresses", kind: kStrings, def: `[]`},
	{name: "preferredSingleSignOnMode", kind: kString, def: `null`},
	{name: "preferredTokenSigningKeyThumbprint", kind: kString, def: `null`},
	{name: "replyUrls", kind: kStrings, def: `[]`},
	{name: "servicePrincipalNames", kind: kStrings, def: `[]`, filter: filterAny},
	{name: "servicePrincipalType", kind: kString, def: `"Application"`, access: readOnly, filter: filterEq},
	{name: "signInAudience", kind: kString, def: `null`, access: readOnly},
	{name: "tags", kind: kStrings, def: `[]`, filter: filterAny, valid: validTags},
	{name: "tokenEncryptionKeyId", kind: kString, def: `null`},
	{name: "samlSingleSignOnSettings", kind: kObject, def: `null`},
	{name: "addIns", kind: kArray, def: `[]`},
	{name: "appRoles", kind: kArray, def: `[]`, access: readOnly},
	{name: "info", kind: kObject, def: `{"logoUrl":null,"marketingUrl":null,"privacyStatementUrl":null,"supportUrl":null,"termsOfServiceUrl":null}`},
	{name: "keyCredentials", kind: kArray, def: `[]`},
	{name: "oauth2PermissionScopes", kind: kArray, def: `[]`, access: readOnly},
	{name: "passwordCredentials", kind: kArray, def: `[]`},
	{name: "resourceSpecificApplicationPermissions", kind: kArray, def: `[]`, access: readOnly},
	{name: "verifiedPublisher", kind: kObject, def: `{"displayName":null,"verifiedPublisherId":null,"addedDateTime":null}`, access: readOnly},
})
