package graphemu

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"appreg/emulator/emu"
	"appreg/emulator/entraemu"
	"appreg/emulator/internal/ca"
	"appreg/emulator/internal/token"
)

// The Graph emulator is the directory behind the Entra emulator's client-secret check.
var (
	_ entraemu.ClientAuthenticator = (*Server)(nil)
	_ entraemu.ResourceDirectory   = (*Server)(nil)
)

// maxBody is Graph's request size limit (4 MB).
const maxBody = 4 << 20

// Options configure a Server; nil or zero fields take the defaults.
type Options struct {
	Authority *ca.Authority // nil: a new CA
	// Issuer verifies bearer tokens; share the Entra emulator's. nil: a new key, which no
	// Entra knows, so only tokens minted with Server.Issuer() are accepted.
	Issuer   *token.Issuer
	TenantID string           // "": a random GUID
	Now      func() time.Time // nil: time.Now
	Logger   *slog.Logger     // nil: discard
	// IDs generates object IDs, appIds and keyIds; they must be GUID strings. nil: uuid.
	IDs func() string
	// Domain is the tenant's initial domain, shown as publisherDomain. "": azemu.onmicrosoft.com.
	Domain string
	// NoListener opens no socket: the emulator is reached only through Handler, mounted on a
	// listener of the caller's (azemu's shared origin). URL is then "".
	NoListener bool
	// Replication is the replicas' lag; the zero value has none (see Realistic).
	Replication Replication
	// Seed seeds the random source of replication lag and replica choice, so that a run can be
	// repeated; 0 picks one, which Seed() reports.
	Seed uint64
	// ObjectQuota is how many directory objects one principal may create, soft-deleted ones
	// included, before Graph answers Directory_QuotaExceeded. 0: Entra's 250; negative: no quota.
	ObjectQuota int
	// WriteQuota is the token bucket of directory writes per calling app and tenant. The zero
	// value is Graph's 3,000 writes per 150 s; Writes < 0 switches throttling off.
	WriteQuota WriteQuota
}

// Server is a running Microsoft Graph emulator (HTTPS, base path /v1.0). Its embedded Controls
// are the shared test controls (see package emu), also served under /_emu/graph/.
type Server struct {
	*emu.Controls

	authority *ca.Authority
	issuer    *token.Issuer
	tenantID  string
	domain    string
	now       func() time.Time
	ids       func() string
	log       *slog.Logger
	seed      uint64

	srv      *emu.HTTPServer
	url      string
	client   *http.Client
	routes   []route
	controls http.Handler

	mu      sync.Mutex
	seq     int64
	apps    *collection[*application] // soft-deleted ones included
	sps     *collection[*servicePrincipal]
	deleted map[string]*object // soft-deleted objects, for expiry after 30 days
	editing map[string]bool    // apps with a credential edit in flight
	// editConflicts counts the 500s answered to overlapping credential edits: a run across
	// several hosts proves its serialisation by this staying 0.
	editConflicts int
	repl          *replicator
	quota         int            // objects a principal may create; 0: no limit
	created       map[string]int // objects per creating principal, soft-deleted ones included
	policy        map[string]json.RawMessage
	writes        *writeLimiter
	systemMI      string // object ID of the system-assigned managed identity
	// initial is what Reset goes back to.
	initial struct {
		repl   Replication
		quota  int
		writes WriteQuota
	}
}

// object is what applications and service principals share: a directory object, as the writable
// replica has it, with what lagging replicas still see.
type object struct {
	id    string
	seq   int64 // creation order: list order and skip tokens
	props map[string]json.RawMessage
	// prev is the version before the latest change, which replicas that have not had changed yet
	// still serve; nil when no change is pending.
	prev    map[string]json.RawMessage
	changed arrivals
	born    arrivals // when each replica learns of the object; nil for seeded ones, as old as the tenant
	// deleted is whether the object is soft-deleted (in /directory/deletedItems); flipped is when
	// each replica learns of the last delete or restore, before which it sees the opposite.
	deleted   bool
	deletedAt time.Time
	flipped   arrivals
	owners    []string
	creator   string // the principal whose quota the object counts against
	seeded    bool
	created   time.Time // on the server's clock, for Resource Manager's own lag; zero for seeded objects
}

// deletedOn reports whether replica r sees the object as soft-deleted; primary is the truth.
func (o *object) deletedOn(r int) bool {
	if o.flipped.has(r) {
		return o.deleted
	}
	return !o.deleted
}

// liveOn reports whether replica r serves the object as a live one.
func (o *object) liveOn(r int) bool { return o.born.has(r) && !o.deletedOn(r) }

// binnedOn reports whether replica r lists the object in /directory/deletedItems.
func (o *object) binnedOn(r int) bool { return o.born.has(r) && o.deletedOn(r) }

// propsOn is the version replica r serves.
func (o *object) propsOn(r int) map[string]json.RawMessage {
	if o.prev != nil && !o.changed.has(r) {
		return o.prev
	}
	return o.props
}

type application struct {
	object
	passwords []*password
}

type servicePrincipal struct {
	object
	roles []string // Graph app roles granted to it
}

type password struct {
	keyID       string
	displayName *string
	hint        string
	start, end  time.Time
	hash        [32]byte // SHA-256 of the secret; the secret itself is never kept
	added       time.Time
	born        arrivals // see object.born
	removed     bool     // removed on the writable replica
	unborn      arrivals // when each replica learns of the removal
}

// visibleOn reports whether replica r has the password.
func (p *password) visibleOn(r int) bool {
	return p.born.has(r) && !(p.removed && p.unborn.has(r))
}

// NewServer starts the emulator; it accepts connections when NewServer returns.
func NewServer(opts *Options) (*Server, error) {
	if opts == nil {
		opts = &Options{}
	}
	s := &Server{
		authority: opts.Authority,
		issuer:    opts.Issuer,
		tenantID:  strings.ToLower(opts.TenantID),
		domain:    opts.Domain,
		now:       opts.Now,
		ids:       opts.IDs,
		log:       opts.Logger,
		seed:      opts.Seed,
		apps:      newCollection[*application]([]string{"appId", "uniqueName"}, []string{"tags", "identifierUris"}),
		sps:       newCollection[*servicePrincipal]([]string{"appId"}, []string{"tags", "servicePrincipalNames"}),
		deleted:   map[string]*object{},
		editing:   map[string]bool{},
		created:   map[string]int{},
		policy:    defaultPolicy(),
	}
	repl, err := opts.Replication.normalized()
	if err != nil {
		return nil, err
	}
	if s.seed == 0 {
		s.seed = rand.Uint64() | 1
	}
	s.repl = newReplicator(repl, s.seed)
	switch {
	case opts.ObjectQuota == 0:
		s.quota = DefaultObjectQuota
	case opts.ObjectQuota > 0:
		s.quota = opts.ObjectQuota
	}
	if s.writes, err = newWriteLimiter(opts.WriteQuota); err != nil {
		return nil, err
	}
	s.initial.repl, s.initial.quota, s.initial.writes = repl, s.quota, opts.WriteQuota
	if s.now == nil {
		s.now = time.Now
	}
	if s.ids == nil {
		s.ids = uuid.NewString
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.tenantID == "" {
		s.tenantID = uuid.NewString()
	}
	if s.domain == "" {
		s.domain = "azemu.onmicrosoft.com"
	}
	if s.authority == nil {
		if s.authority, err = ca.New(); err != nil {
			return nil, fmt.Errorf("graph: %w", err)
		}
	}
	if s.issuer == nil {
		if s.issuer, err = token.NewIssuer(s.now); err != nil {
			return nil, fmt.Errorf("graph: %w", err)
		}
	}
	s.routes = s.routeTable()
	s.Controls = emu.New(emu.Config{
		Service: "graph", Operations: s.operations(), ResetData: s.resetData,
		State: func() any { return s.State() },
	})
	s.controls = emu.Handler(s.Controls, s.controlRoutes()...)
	s.client = emu.Client(s.authority.Pool())
	if !opts.NoListener {
		ln, err := emu.Listen("")
		if err != nil {
			return nil, fmt.Errorf("graph: %w", err)
		}
		s.srv = emu.Serve(ln, s, s.authority.ServerTLS(), s.log)
		s.url = s.srv.URL
		s.log.Info("graph emulator listening", "url", s.url, "tenant", s.tenantID)
	}
	return s, nil
}

// URL is the service root without the version, https://127.0.0.1:port; clients use URL()+"/v1.0".
// It is "" with NoListener.
func (s *Server) URL() string { return s.url }

// Seed is the seed of the replication lag's random source: pass it as Options.Seed to repeat a
// run's lag (as far as the order of requests repeats too).
func (s *Server) Seed() uint64 { return s.seed }

// TenantID is the directory's tenant.
func (s *Server) TenantID() string { return s.tenantID }

// Client is an HTTP client that trusts the emulator's CA.
func (s *Server) Client() *http.Client { return s.client }

// Issuer verifies the bearer tokens Graph accepts; tests can mint tokens with it.
func (s *Server) Issuer() *token.Issuer { return s.issuer }

// Handler serves /v1.0 and /_emu/, for mounting the emulator on another listener; URLs in
// responses follow the request's Host.
func (s *Server) Handler() http.Handler { return s }

// Close stops the listener and waits for in-flight requests.
func (s *Server) Close() {
	emu.CloseClient(s.client)
	s.srv.Close()
}

// Operation names, as used by faults and statistics.
const (
	OpListApplications       = "listApplications"
	OpCreateApplication      = "createApplication"
	OpGetApplication         = "getApplication"
	OpUpdateApplication      = "updateApplication"
	OpUpsertApplication      = "upsertApplication" // PATCH /applications(uniqueName='…')
	OpDeleteApplication      = "deleteApplication"
	OpAddPassword            = "addPassword"
	OpRemovePassword         = "removePassword"
	OpListOwners             = "listOwners"
	OpAddOwner               = "addOwner"
	OpRemoveOwner            = "removeOwner"
	OpListServicePrincipals  = "listServicePrincipals"
	OpCreateServicePrincipal = "createServicePrincipal"
	OpGetServicePrincipal    = "getServicePrincipal"
	OpUpdateServicePrincipal = "updateServicePrincipal"
	OpUpsertServicePrincipal = "upsertServicePrincipal" // PATCH /servicePrincipals(appId='…')
	OpDeleteServicePrincipal = "deleteServicePrincipal"
	OpGetDirectoryObject     = "getDirectoryObject"
	OpListDeletedItems       = "listDeletedItems"   // GET /directory/deletedItems/microsoft.graph.{application,servicePrincipal}
	OpGetDeletedItem         = "getDeletedItem"     // GET /directory/deletedItems/{id}
	OpRestoreDeletedItem     = "restoreDeletedItem" // POST /directory/deletedItems/{id}/restore
	OpPurgeDeletedItem       = "purgeDeletedItem"   // DELETE /directory/deletedItems/{id}
	OpGetPolicy              = "getAppManagementPolicy"
	OpUpdatePolicy           = "updateAppManagementPolicy"
)

// route is one REST operation. Patterns are path segments after /v1.0; "{x}" binds one segment.
// "set(key)" segments are split into "set" and "(key)" before matching, and a key binding in a
// pattern also matches that form.
type route struct {
	method  string
	pattern []string
	op      string
	handle  func(*call) reply
}

// routeTable lists every operation the emulator serves.
func (s *Server) routeTable() []route {
	r := func(method, pattern, op string, h func(*call) reply) route {
		return route{method, strings.Split(pattern, "/"), op, h}
	}
	return []route{
		r("GET", "applications", OpListApplications, s.listApplications),
		r("POST", "applications", OpCreateApplication, s.createApplication),
		r("GET", "applications/{app}", OpGetApplication, s.getApplication),
		r("PATCH", "applications/{app}", OpUpdateApplication, s.updateApplication),
		r("DELETE", "applications/{app}", OpDeleteApplication, s.deleteApplication),
		r("POST", "applications/{app}/addPassword", OpAddPassword, s.addPassword),
		r("POST", "applications/{app}/removePassword", OpRemovePassword, s.removePassword),
		r("GET", "applications/{app}/owners", OpListOwners, s.listOwners),
		r("POST", "applications/{app}/owners/$ref", OpAddOwner, s.addOwner),
		r("DELETE", "applications/{app}/owners/{owner}/$ref", OpRemoveOwner, s.removeOwner),
		r("GET", "servicePrincipals", OpListServicePrincipals, s.listServicePrincipals),
		r("POST", "servicePrincipals", OpCreateServicePrincipal, s.createServicePrincipal),
		r("GET", "servicePrincipals/{sp}", OpGetServicePrincipal, s.getServicePrincipal),
		r("PATCH", "servicePrincipals/{sp}", OpUpdateServicePrincipal, s.updateServicePrincipal),
		r("DELETE", "servicePrincipals/{sp}", OpDeleteServicePrincipal, s.deleteServicePrincipal),
		r("GET", "servicePrincipals/{sp}/owners", OpListOwners, s.listOwners),
		r("GET", "directoryObjects/{obj}", OpGetDirectoryObject, s.getDirectoryObject),
		r("GET", "directory/deletedItems/application", OpListDeletedItems, s.listDeletedApplications),
		r("GET", "directory/deletedItems/servicePrincipal", OpListDeletedItems, s.listDeletedServicePrincipals),
		r("GET", "directory/deletedItems/{obj}", OpGetDeletedItem, s.getDeletedItem),
		r("DELETE", "directory/deletedItems/{obj}", OpPurgeDeletedItem, s.purgeDeletedItem),
		r("POST", "directory/deletedItems/{obj}/restore", OpRestoreDeletedItem, s.restoreDeletedItem),
		r("GET", "policies/defaultAppManagementPolicy", OpGetPolicy, s.getPolicy),
		r("PATCH", "policies/defaultAppManagementPolicy", OpUpdatePolicy, s.updatePolicy),
	}
}

// call is one request on its way through the pipeline.
type call struct {
	r               *http.Request
	op              string
	params          map[string]string
	claims          token.Claims
	body            []byte
	requestID       string
	clientRequestID string
	latency         time.Duration // standing and injected, spent by wait
	replica         int           // the replica that serves the request's reads
	header          http.Header   // added to the response: throttling's warning
}

// wait spends the injected latency once; credential operations call it while they hold the
// app's edit mark, so overlapping edits can be observed.
func (c *call) wait() {
	if c.latency <= 0 {
		return
	}
	t := time.NewTimer(c.latency)
	defer t.Stop()
	c.latency = 0
	select {
	case <-t.C:
	case <-c.r.Context().Done():
	}
}

// base is the service root as the client addressed it, so @odata.context and nextLink point
// back at whatever host name the client used.
func (c *call) base() string { return "https://" + c.r.Host + "/v1.0" }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, emu.Prefix) {
		s.controls.ServeHTTP(w, r)
		return
	}
	c := &call{r: r, requestID: uuid.NewString(), clientRequestID: r.Header.Get("client-request-id")}
	if c.clientRequestID == "" {
		c.clientRequestID = c.requestID
	}
	rep := s.dispatch(c)
	c.wait()
	s.write(w, c, rep)
	s.log.Debug("graph request", "method", r.Method, "path", r.URL.Path, "op", c.op, "status", rep.status, "request_id", c.requestID)
}

func (s *Server) dispatch(c *call) reply {
	r := c.r
	segs, ok := splitPath(r.URL.EscapedPath())
	if !ok || len(segs) == 0 {
		return fail(http.StatusBadRequest, "BadRequest", "Invalid version.")
	}
	rt, params, miss := s.match(r.Method, segs[1:])
	claims, rep := s.authenticate(r)
	if rep != nil {
		return *rep
	}
	c.claims = claims
	if rt == nil {
		return miss
	}
	c.op, c.params = refineOp(rt.op, params), params
	wait, f := s.Take(c.op)
	c.latency = wait
	if f != nil && f.Status != 0 {
		return faultReply(f)
	}
	if r.Method != http.MethodGet {
		h, rep := s.writes.take(claims.AppID+"/"+claims.TenantID, s.log)
		if rep != nil {
			return *rep
		}
		c.header = h
	}
	s.mu.Lock()
	c.replica = s.repl.pick()
	s.expireDeleted()
	s.mu.Unlock()
	if r.Method == http.MethodPost || r.Method == http.MethodPatch {
		body, rep := readBody(r)
		if rep != nil {
			return *rep
		}
		c.body = body
	}
	return rt.handle(c)
}

// refineOp names the PATCH on an upsert key apart from a plain update, so faults and statistics
// can target the upsert alone.
func refineOp(op string, params map[string]string) string {
	prop, _, _ := parseKey(params["app"] + params["sp"])
	switch {
	case op == OpUpdateApplication && strings.EqualFold(prop, "uniqueName"):
		return OpUpsertApplication
	case op == OpUpdateServicePrincipal && strings.EqualFold(prop, "appId"):
		return OpUpsertServicePrincipal
	}
	return op
}

// splitPath turns /v1.0/applications(appId='x')/addPassword into
// ["v1.0", "applications", "(appId='x')", "addPassword"], unescaping each segment after the split
// so an escaped "/" inside a key stays in its segment.
func splitPath(escaped string) ([]string, bool) {
	raw := strings.Split(strings.Trim(escaped, "/"), "/")
	if len(raw) == 0 || raw[0] != "v1.0" {
		return nil, false
	}
	var segs []string
	for _, e := range raw {
		seg, err := url.PathUnescape(e)
		if err != nil {
			return nil, false
		}
		if i := strings.IndexByte(seg, '('); i > 0 && strings.HasSuffix(seg, ")") {
			segs = append(segs, seg[:i], seg[i:])
			continue
		}
		segs = append(segs, strings.TrimPrefix(seg, "microsoft.graph."))
	}
	return segs, true
}

// match finds the route for a path; on a miss it returns Graph's 400 or 405.
func (s *Server) match(method string, segs []string) (*route, map[string]string, reply) {
	pathMatched := false
	for i := range s.routes {
		rt := &s.routes[i]
		if len(rt.pattern) != len(segs) {
			continue
		}
		params := map[string]string{}
		matched := true
		for j, p := range rt.pattern {
			if strings.HasPrefix(p, "{") {
				params[strings.Trim(p, "{}")] = segs[j]
				continue
			}
			if !strings.EqualFold(p, segs[j]) {
				matched = false
				break
			}
		}
		if !matched {
			continue
		}
		pathMatched = true
		if rt.method == method {
			return rt, params, reply{}
		}
	}
	if pathMatched {
		return nil, nil, fail(http.StatusMethodNotAllowed, "Request_BadRequest", "Specified HTTP method is not allowed for the request uri.")
	}
	seg := "v1.0"
	if len(segs) > 0 {
		seg = segs[len(segs)-1]
	}
	return nil, nil, fail(http.StatusBadRequest, "BadRequest", "Resource not found for the segment '%s'.", seg)
}

// readBody reads a request body, gunzipping it when kiota compressed it.
func readBody(r *http.Request) ([]byte, *reply) {
	var rd io.Reader = io.LimitReader(r.Body, maxBody+1)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(rd)
		if err != nil {
			rep := errUnreadableBody()
			return nil, &rep
		}
		defer zr.Close()
		rd = io.LimitReader(zr, maxBody+1)
	default:
		// kiota answers a 415 by resending the body uncompressed.
		rep := fail(http.StatusUnsupportedMediaType, "UnsupportedMediaType", "Content-Encoding '%s' is not supported.", enc)
		return nil, &rep
	}
	body, err := io.ReadAll(rd)
	if err != nil {
		rep := errUnreadableBody()
		return nil, &rep
	}
	if len(body) > maxBody {
		rep := fail(http.StatusRequestEntityTooLarge, "Request_RequestEntityTooLarge", "The request is larger than the 4 MB limit.")
		return nil, &rep
	}
	return body, nil
}

// decodeObject parses a JSON object body; an empty body is an empty object only when allowed.
func decodeObject(body []byte, emptyOK bool) (map[string]json.RawMessage, *reply) {
	if len(strings.TrimSpace(string(body))) == 0 {
		if emptyOK {
			return map[string]json.RawMessage{}, nil
		}
		rep := errUnreadableBody()
		return nil, &rep
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		rep := errUnreadableBody()
		return nil, &rep
	}
	return m, nil
}

// write renders a reply with the headers Graph sends on every response.
func (s *Server) write(w http.ResponseWriter, c *call, rep reply) {
	h := w.Header()
	for k, vs := range c.header {
		h[k] = vs
	}
	for k, vs := range rep.header {
		h[k] = vs
	}
	h.Set("request-id", c.requestID)
	h.Set("client-request-id", c.clientRequestID)
	h.Set("x-ms-ags-diagnostic", `{"ServerInfo":{"DataCenter":"Local","Slice":"E","Ring":"0","ScaleUnit":"000","RoleInstance":"azemu"}}`)
	h.Set("Strict-Transport-Security", "max-age=31536000")
	h.Set("Cache-Control", "no-cache")
	if rep.err != nil {
		h.Set("Content-Type", contentTypeError)
		w.WriteHeader(rep.status)
		var inner ordered
		if rep.innerCode != "" {
			inner = append(inner, kv{"code", rep.innerCode})
		}
		inner = append(inner,
			kv{"date", s.now().UTC().Format(layoutInnerDate)},
			kv{"request-id", c.requestID},
			kv{"client-request-id", c.clientRequestID},
		)
		e := ordered{{"code", rep.err.Code}, {"message", rep.err.Message}}
		if len(rep.err.Details) > 0 {
			e = append(e, kv{"details", rep.err.Details})
		}
		e = append(e, kv{"innerError", inner})
		json.NewEncoder(w).Encode(ordered{{"error", e}})
		return
	}
	if rep.body == nil {
		w.WriteHeader(rep.status)
		return
	}
	b, err := json.Marshal(rep.body)
	if err != nil {
		s.log.Error("encode response", "op", c.op, "error", err)
		http.Error(w, "", http.StatusInternalServerError)
		return
	}
	h.Set("Content-Type", contentTypeOData)
	h.Set("OData-Version", "4.0")
	w.WriteHeader(rep.status)
	w.Write(b)
}

// authenticate checks the bearer token as Graph does: present, signed by the tenant's Entra,
// unexpired, and minted for https://graph.microsoft.com.
func (s *Server) authenticate(r *http.Request) (token.Claims, *reply) {
	unauthorized := func(msg string) (token.Claims, *reply) {
		rep := fail(http.StatusUnauthorized, "InvalidAuthenticationToken", "%s", msg)
		rep.header = http.Header{"Www-Authenticate": {`Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`}}
		return token.Claims{}, &rep
	}
	raw := token.Bearer(r.Header.Get("Authorization"))
	if raw == "" {
		return unauthorized("Access token is empty.")
	}
	claims, err := s.issuer.Verify(raw, entraemu.GraphResource)
	if errors.Is(err, token.ErrAudience) {
		claims, err = s.issuer.Verify(raw, entraemu.GraphAppID) // scope 00000003-…/.default
	}
	switch {
	case errors.Is(err, token.ErrExpired):
		return unauthorized("Lifetime validation failed, the token is expired.")
	case errors.Is(err, token.ErrAudience):
		return unauthorized("Access token validation failure. Invalid audience.")
	case err != nil:
		return unauthorized("Access token validation failure.")
	case !strings.EqualFold(claims.TenantID, s.tenantID):
		return unauthorized("Access token validation failure. Invalid issuer.")
	}
	return claims, nil
}
