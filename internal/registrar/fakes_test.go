package registrar

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// fakeDirectory is an in-memory Graph with failure switches. It enforces what the registrar
// relies on: uniqueName keys, passwords per app, and service principals per appId.
type fakeDirectory struct {
	mu      sync.Mutex
	now     func() time.Time
	apps    map[string]*App // by object id
	sps     map[string]ServicePrincipal
	secrets map[string]string // keyId → secret text, to prove what was stored
	seq     int
	spLag   int // UpsertServicePrincipal answers CodeReplicating this many times
	// pressure is what WritePressure reports: how close Graph says appreg is to its write limit.
	pressure float64
	fail     map[string]error   // operation → error returned once
	failN    map[string][]error // operation → errors returned by its next calls, in order
	calls    map[string]int
	edits    []time.Time // times of credential edits
	// staleList, when set, is what ListManagedApplications answers: a listing that has not
	// caught up with the writes since.
	staleList []App
	// hideNewest makes this many FindApplication answers leave out the app's newest password,
	// as a Graph replica that has not caught up with addPassword does.
	hideNewest int
	// hideSPs makes this many FindServicePrincipal answers say not found for one that exists: a
	// replica that has not caught up.
	hideSPs int
	// maxLifetime, when set, is a tenant app management policy: longer passwords are refused.
	maxLifetime time.Duration
	deleted     map[string]bool // soft-deleted object ids
}

func newFakeDirectory(now func() time.Time) *fakeDirectory {
	return &fakeDirectory{now: now, apps: map[string]*App{}, sps: map[string]ServicePrincipal{}, secrets: map[string]string{}, fail: map[string]error{}, failN: map[string][]error{}, calls: map[string]int{}, deleted: map[string]bool{}}
}

func (f *fakeDirectory) id() string {
	f.seq++
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", f.seq, f.seq)
}

func (f *fakeDirectory) hit(op string) error {
	f.calls[op]++
	if q := f.failN[op]; len(q) > 0 {
		f.failN[op] = q[1:]
		return q[0]
	}
	if err, ok := f.fail[op]; ok {
		delete(f.fail, op)
		return err
	}
	return nil
}

func (f *fakeDirectory) byUnique(u string) *App {
	for _, a := range f.apps {
		if a.UniqueName == u {
			return a
		}
	}
	return nil
}

func (f *fakeDirectory) FindApplication(_ context.Context, uniqueName string) (App, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.hit("find"); err != nil {
		return App{}, err
	}
	if a := f.byUnique(uniqueName); a != nil {
		c := clone(*a)
		if f.hideNewest > 0 && len(c.Passwords) > 0 {
			f.hideNewest--
			c.Passwords = c.Passwords[:len(c.Passwords)-1]
		}
		return c, nil
	}
	return App{}, &Error{Code: CodeNotFound, Op: "find"}
}

func (f *fakeDirectory) CreateApplication(ctx context.Context, spec AppSpec) (App, error) {
	f.mu.Lock()
	f.calls["create"]++ // refused ones too: Graph counts them against its write limit
	taken := f.byUnique(spec.UniqueName) != nil
	f.mu.Unlock()
	if taken {
		return App{}, &Error{Code: CodeInvalid, Reason: RejectClientNameReserved, Op: "create", Message: "HTTP 400 Request_BadRequest: Another object with the same value for property uniqueName already exists."}
	}
	app, _, err := f.UpsertApplication(ctx, spec)
	return app, err
}

func (f *fakeDirectory) UpsertApplication(_ context.Context, spec AppSpec) (App, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.hit("upsert"); err != nil {
		return App{}, false, err
	}
	a := f.byUnique(spec.UniqueName)
	created := a == nil
	if created {
		a = &App{ObjectID: f.id(), AppID: f.id(), UniqueName: spec.UniqueName, Created: f.now()}
		f.apps[a.ObjectID] = a
	}
	a.DisplayName, a.SignInAudience, a.Notes = spec.DisplayName, spec.SignInAudience, spec.Notes
	a.Tags, a.RedirectURIs = slices.Clone(spec.Tags), slices.Clone(spec.RedirectURIs)
	if !created {
		return App{}, false, nil // Graph's 204 has no body
	}
	return clone(*a), true, nil
}

func (f *fakeDirectory) FindServicePrincipal(_ context.Context, appID string) (ServicePrincipal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.hit("findsp"); err != nil {
		return ServicePrincipal{}, err
	}
	if sp, ok := f.sps[appID]; ok && f.hideSPs <= 0 {
		return sp, nil
	} else if ok {
		f.hideSPs--
	}
	return ServicePrincipal{}, &Error{Code: CodeNotFound, Op: "findsp"}
}

func (f *fakeDirectory) UpsertServicePrincipal(_ context.Context, appID string) (ServicePrincipal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.hit("sp"); err != nil {
		return ServicePrincipal{}, err
	}
	if f.spLag > 0 {
		f.spLag--
		return ServicePrincipal{}, &Error{Code: CodeReplicating, Op: "sp", Message: "NoBackingApplicationObject"}
	}
	sp, ok := f.sps[appID]
	if !ok {
		sp = ServicePrincipal{ObjectID: f.id(), AppID: appID}
		f.sps[appID] = sp
	}
	return sp, nil
}

func (f *fakeDirectory) AddPassword(_ context.Context, objectID string, spec PasswordSpec) (NewPassword, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.hit("add"); err != nil {
		return NewPassword{}, err
	}
	a := f.apps[objectID]
	if a == nil {
		return NewPassword{}, &Error{Code: CodeReplicating, Op: "add"}
	}
	if f.maxLifetime > 0 && spec.End.Sub(spec.Start) > f.maxLifetime {
		return NewPassword{}, &Error{Code: CodeInvalid, Reason: RejectLifetimePolicy, Op: "add", Message: "HTTP 400 CredentialInvalidLifetimeAsPerAppPolicy"}
	}
	f.edits = append(f.edits, f.now())
	text := fmt.Sprintf("s3cr3t~%06d-%s", f.seq, strings.Repeat("x", 24))
	p := Password{KeyID: f.id(), DisplayName: spec.DisplayName, Hint: text[:3], Start: spec.Start, End: spec.End}
	a.Passwords = append(a.Passwords, p)
	f.secrets[p.KeyID] = text
	return NewPassword{Password: p, Secret: NewSecretValue(text)}, nil
}

func (f *fakeDirectory) RemovePassword(_ context.Context, objectID, keyID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.hit("remove"); err != nil {
		return err
	}
	a := f.apps[objectID]
	if a == nil {
		return &Error{Code: CodeNotFound, Op: "remove"}
	}
	f.edits = append(f.edits, f.now())
	n := len(a.Passwords)
	a.Passwords = slices.DeleteFunc(a.Passwords, func(p Password) bool { return p.KeyID == keyID })
	if len(a.Passwords) == n {
		return &Error{Code: CodeNotFound, Op: "remove"}
	}
	return nil
}

func (f *fakeDirectory) DeleteServicePrincipal(_ context.Context, objectID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.hit("deletesp"); err != nil {
		return err
	}
	for appID, sp := range f.sps {
		if sp.ObjectID == objectID {
			delete(f.sps, appID)
			f.deleted[objectID] = true
			return nil
		}
	}
	return &Error{Code: CodeNotFound, Op: "deletesp"}
}

func (f *fakeDirectory) DeleteApplication(_ context.Context, objectID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.hit("deleteapp"); err != nil {
		return err
	}
	if _, ok := f.apps[objectID]; !ok {
		return &Error{Code: CodeNotFound, Op: "deleteapp"}
	}
	delete(f.apps, objectID)
	f.deleted[objectID] = true
	return nil
}

func (f *fakeDirectory) Purge(_ context.Context, objectID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.hit("purge"); err != nil {
		return err
	}
	if !f.deleted[objectID] {
		return &Error{Code: CodeNotFound, Op: "purge"}
	}
	delete(f.deleted, objectID)
	return nil
}

func (f *fakeDirectory) ListManagedApplications(_ context.Context, fn func(App) error) error {
	f.mu.Lock()
	var apps []App
	for _, a := range f.apps {
		if a.Managed() {
			apps = append(apps, clone(*a))
		}
	}
	if f.staleList != nil {
		apps = slices.Clone(f.staleList)
	}
	err := f.hit("list")
	f.mu.Unlock()
	if err != nil {
		return err
	}
	slices.SortFunc(apps, func(a, b App) int { return strings.Compare(a.UniqueName, b.UniqueName) })
	for _, a := range apps {
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeDirectory) app(uniqueName string) App {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.byUnique(uniqueName); a != nil {
		return clone(*a)
	}
	return App{}
}

func clone(a App) App {
	a.Tags = slices.Clone(a.Tags)
	a.RedirectURIs = slices.Clone(a.RedirectURIs)
	a.Passwords = slices.Clone(a.Passwords)
	return a
}

// fakeStore is an in-memory Key Vault: versions per name, newest last.
type fakeStore struct {
	mu       sync.Mutex
	now      func() time.Time
	versions map[string][]storedVersion
	seq      int
	failPut  []error // errors returned by successive Put calls
	puts     int
	deleted  map[string]bool // soft-deleted names
}

type storedVersion struct {
	SecretVersion
	value string
}

func newFakeStore(now func() time.Time) *fakeStore {
	return &fakeStore{now: now, versions: map[string][]storedVersion{}}
}

func (s *fakeStore) Latest(_ context.Context, name string) (SecretVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.versions[name]
	if len(vs) == 0 {
		return SecretVersion{}, &Error{Code: CodeNotFound, Op: "latest"}
	}
	return vs[len(vs)-1].SecretVersion, nil
}

func (s *fakeStore) Deleted(_ context.Context, name string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleted[name], nil
}

func (s *fakeStore) Value(_ context.Context, name string) (SecretValue, SecretVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.versions[name]
	if len(vs) == 0 {
		return SecretValue{}, SecretVersion{}, &Error{Code: CodeNotFound, Op: "value"}
	}
	v := vs[len(vs)-1]
	return NewSecretValue(v.value), v.SecretVersion, nil
}

func (s *fakeStore) Disable(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.versions[name]
	if len(vs) == 0 {
		return &Error{Code: CodeNotFound, Op: "disable"}
	}
	vs[len(vs)-1].Enabled = false
	return nil
}

func (s *fakeStore) Versions(_ context.Context, name string) ([]SecretVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SecretVersion
	for _, v := range s.versions[name] {
		out = append(out, v.SecretVersion)
	}
	return out, nil
}

func (s *fakeStore) Put(_ context.Context, name string, value SecretValue, spec SecretSpec) (SecretVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.puts++
	if len(s.failPut) > 0 {
		err := s.failPut[0]
		s.failPut = s.failPut[1:]
		return SecretVersion{}, err
	}
	s.seq++
	ver := fmt.Sprintf("%032x", s.seq)
	tags := map[string]string{}
	for k, v := range spec.Tags {
		tags[k] = v
	}
	v := SecretVersion{
		Name: name, Version: ver, ID: "https://vault.test/secrets/" + name + "/" + ver, Enabled: true,
		Created: s.now(), NotBefore: spec.NotBefore, Expires: spec.Expires, Tags: tags,
	}
	s.versions[name] = append(s.versions[name], storedVersion{v, value.Reveal()})
	return v, nil
}

func (s *fakeStore) ListManaged(_ context.Context, fn func(SecretVersion) error) error {
	s.mu.Lock()
	var latest []SecretVersion
	for _, vs := range s.versions {
		if v := vs[len(vs)-1].SecretVersion; v.Managed() {
			latest = append(latest, v)
		}
	}
	s.mu.Unlock()
	for _, v := range latest {
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

func (s *fakeStore) value(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.versions[name]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1].value
}

func (s *fakeStore) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.versions[name])
}

// recordingPublisher keeps what was published.
type recordingPublisher struct {
	mu           sync.Mutex
	events       []Event
	jobs         []RotationJob
	maintenance  []MaintenanceJob
	accessChecks []scheduledCheck
	fail         error
}

type scheduledCheck struct {
	job AccessCheckJob
	at  time.Time
}

func (p *recordingPublisher) EnqueueMaintenance(_ context.Context, j MaintenanceJob) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	p.maintenance = append(p.maintenance, j)
	return nil
}

func (p *recordingPublisher) EnqueueAccessCheck(_ context.Context, j AccessCheckJob, at time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	p.accessChecks = append(p.accessChecks, scheduledCheck{j, at})
	return nil
}

// takeJobs returns the jobs sent since the last call, as the messages a host would deliver.
func (p *recordingPublisher) takeJobs() (rotations []RotationJob, maintenance []MaintenanceJob) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rotations, maintenance = p.jobs, p.maintenance
	p.jobs, p.maintenance = nil, nil
	return rotations, maintenance
}

func (p *recordingPublisher) Publish(_ context.Context, e Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	p.events = append(p.events, e)
	return nil
}

func (p *recordingPublisher) EnqueueRotation(_ context.Context, j RotationJob) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	p.jobs = append(p.jobs, j)
	return nil
}

func (p *recordingPublisher) ofType(t EventType) []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Event
	for _, e := range p.events {
		if e.Type == t {
			out = append(out, e)
		}
	}
	return out
}

// clock is a manual clock; Sleep advances it, so backoff and spacing cost no real time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}

// fakeVerifier signs in against fakeDirectory: a secret works when it is the text of a live
// password of the app. lag makes the first calls answer "still replicating".
type fakeVerifier struct {
	dir   *fakeDirectory
	lag   int
	flaps []bool // answers before the password settles: true accepts, false refuses
	fail  error  // returned on every call, when set
	calls int
}

func (v *fakeVerifier) Authenticates(_ context.Context, appID string, secret SecretValue) error {
	v.dir.mu.Lock()
	defer v.dir.mu.Unlock()
	v.calls++
	if v.fail != nil {
		return v.fail
	}
	if v.lag > 0 {
		v.lag--
		return &Error{Code: CodeReplicating, Op: "verify", Message: "AADSTS7000215"}
	}
	if len(v.flaps) > 0 {
		ok := v.flaps[0]
		v.flaps = v.flaps[1:]
		if !ok {
			return &Error{Code: CodeReplicating, Op: "verify", Message: "AADSTS7000215"}
		}
	}
	for _, a := range v.dir.apps {
		if a.AppID != appID {
			continue
		}
		for _, p := range a.Passwords {
			if v.dir.secrets[p.KeyID] == secret.Reveal() && p.Live(v.dir.now()) {
				return nil
			}
		}
	}
	return &Error{Code: CodeReplicating, Op: "verify", Message: "AADSTS7000215"}
}

func (f *fakeDirectory) WritePressure() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pressure
}
