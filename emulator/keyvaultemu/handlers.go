package keyvaultemu

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// view renders stored secrets for one request: identifiers use the request's Host, as the
// service's use the vault's DNS name.
type view struct {
	base string
	days int
}

func (s *Server) view(r *http.Request) view {
	return view{base: "https://" + r.Host, days: s.days}
}

func (vw view) recoveryLevel() string {
	if vw.days == 90 {
		return "Recoverable+Purgeable"
	}
	return "CustomizedRecoverable+Purgeable"
}

// bundle renders one version. withVersion=false gives the versionless id of list items.
func (vw view) bundle(sec *secret, v *version, withValue, withVersion bool) bundleOut {
	id := vw.base + "/secrets/" + sec.name
	if withVersion {
		id += "/" + v.id
	}
	b := bundleOut{
		ContentType: v.contentType,
		ID:          id,
		Attributes: attributesOut{
			Enabled:         v.enabled,
			NotBefore:       v.nbf,
			Expires:         v.exp,
			Created:         v.created,
			Updated:         v.updated,
			RecoveryLevel:   vw.recoveryLevel(),
			RecoverableDays: vw.days,
		},
		Tags: v.tags,
	}
	if withValue {
		val := v.value
		b.Value = &val
	}
	return b
}

// deletedBundle is the latest version plus the soft-delete fields; it never carries the value.
func (vw view) deletedBundle(sec *secret, withVersion bool) bundleOut {
	b := vw.bundle(sec, sec.latest(), false, withVersion)
	b.RecoveryID = vw.base + "/deletedsecrets/" + sec.name
	d, p := sec.deleted.date.Unix(), sec.deleted.purgeAt.Unix()
	b.DeletedDate, b.ScheduledPurgeDate = &d, &p
	return b
}

// begin takes the lock and applies the passage of time; callers defer s.mu.Unlock.
func (s *Server) begin() time.Time {
	s.mu.Lock()
	now := s.now()
	s.vault.sweep(now)
	return now
}

func (s *Server) setSecret(r *http.Request) (int, any, *apiError) {
	name := r.PathValue("name")
	if e := checkName(name); e != nil {
		return 0, nil, e
	}
	var in setIn
	if e := decodeBody(r, &in); e != nil {
		return 0, nil, e
	}
	if in.Value == nil {
		return 0, nil, badParameter("The secret value is required: the request has no 'value'.")
	}
	if len(*in.Value) > maxValueBytes {
		return 0, nil, badParameter("The secret value is larger than the maximum of 25600 bytes.")
	}
	if e := checkMetadata(in.ContentType, in.Tags); e != nil {
		return 0, nil, e
	}

	now := s.begin()
	defer s.mu.Unlock()
	sec, st := s.vault.lookup(name, now)
	switch st {
	case deleting, purging:
		return 0, nil, beingDeleted()
	case deleted:
		return 0, nil, deletedButRecoverable(sec.name)
	case absent:
		sec = &secret{name: name}
		s.vault.secrets[strings.ToLower(name)] = sec
	}
	v := &version{id: strings.ToLower(s.ids()), value: *in.Value, enabled: true, created: now.Unix(), updated: now.Unix()}
	if in.ContentType != nil {
		v.contentType = *in.ContentType
	}
	if len(in.Tags) > 0 {
		v.tags = in.Tags
	}
	in.Attributes.apply(v)
	sec.versions = append(sec.versions, v)
	return http.StatusOK, s.view(r).bundle(sec, v, true, true), nil
}

func (s *Server) getSecret(r *http.Request) (int, any, *apiError) {
	name, ver := r.PathValue("name"), r.PathValue("version")
	if e := checkName(name); e != nil {
		return 0, nil, e
	}
	now := s.begin()
	defer s.mu.Unlock()
	sec, st := s.vault.lookup(name, now)
	if st != active {
		return 0, nil, secretNotFound(nameID(name, ver))
	}
	v := sec.find(ver)
	if v == nil {
		return 0, nil, secretNotFound(nameID(name, ver))
	}
	// nbf and exp are informational for secrets: the service returns the value outside the
	// window. Only a disabled version refuses to be read.
	if !v.enabled {
		return 0, nil, secretDisabled()
	}
	return http.StatusOK, s.view(r).bundle(sec, v, true, true), nil
}

func (s *Server) updateSecret(r *http.Request) (int, any, *apiError) {
	name, ver := r.PathValue("name"), r.PathValue("version")
	if e := checkName(name); e != nil {
		return 0, nil, e
	}
	var in updateIn
	if e := decodeBody(r, &in); e != nil {
		return 0, nil, e
	}
	if e := checkMetadata(in.ContentType, in.Tags); e != nil {
		return 0, nil, e
	}
	now := s.begin()
	defer s.mu.Unlock()
	sec, st := s.vault.lookup(name, now)
	if st != active && st != recovering {
		return 0, nil, secretNotFound(nameID(name, ver))
	}
	v := sec.find(ver)
	if v == nil {
		return 0, nil, secretNotFound(nameID(name, ver))
	}
	if in.ContentType != nil {
		v.contentType = *in.ContentType
	}
	if in.Tags != nil {
		// Tags given in an update replace the whole set.
		v.tags = nil
		if len(in.Tags) > 0 {
			v.tags = in.Tags
		}
	}
	in.Attributes.apply(v)
	v.updated = now.Unix()
	return http.StatusOK, s.view(r).bundle(sec, v, false, true), nil
}

func (s *Server) deleteSecret(r *http.Request) (int, any, *apiError) {
	name := r.PathValue("name")
	if e := checkName(name); e != nil {
		return 0, nil, e
	}
	now := s.begin()
	defer s.mu.Unlock()
	sec, st := s.vault.lookup(name, now)
	switch st {
	case active, recovering:
	case deleting:
		return 0, nil, beingDeleted()
	default:
		return 0, nil, secretNotFound(name)
	}
	sec.deleted = &deletion{
		date:      now,
		purgeAt:   now.Add(time.Duration(s.days) * 24 * time.Hour),
		visibleAt: now.Add(s.lag),
	}
	sec.visibleAt = time.Time{}
	return http.StatusOK, s.view(r).deletedBundle(sec, true), nil
}

func (s *Server) getDeletedSecret(r *http.Request) (int, any, *apiError) {
	name := r.PathValue("name")
	if e := checkName(name); e != nil {
		return 0, nil, e
	}
	now := s.begin()
	defer s.mu.Unlock()
	sec, st := s.vault.lookup(name, now)
	if st != deleted {
		return 0, nil, deletedNotFound(name)
	}
	return http.StatusOK, s.view(r).deletedBundle(sec, true), nil
}

func (s *Server) purgeDeletedSecret(r *http.Request) (int, any, *apiError) {
	name := r.PathValue("name")
	if e := checkName(name); e != nil {
		return 0, nil, e
	}
	now := s.begin()
	defer s.mu.Unlock()
	_, st := s.vault.lookup(name, now)
	if e := settledDeleted(name, st); e != nil {
		return 0, nil, e
	}
	key := strings.ToLower(name)
	delete(s.vault.secrets, key)
	if s.lag > 0 {
		s.vault.purging[key] = now.Add(s.lag)
	}
	return http.StatusNoContent, nil, nil
}

func (s *Server) recoverDeletedSecret(r *http.Request) (int, any, *apiError) {
	name := r.PathValue("name")
	if e := checkName(name); e != nil {
		return 0, nil, e
	}
	now := s.begin()
	defer s.mu.Unlock()
	sec, st := s.vault.lookup(name, now)
	if e := settledDeleted(name, st); e != nil {
		return 0, nil, e
	}
	sec.deleted = nil
	sec.visibleAt = now.Add(s.lag)
	return http.StatusOK, s.view(r).bundle(sec, sec.latest(), false, true), nil
}

// settledDeleted admits purge and recover only on a secret whose delete has settled; one still
// being deleted answers 409 ObjectIsBeingDeleted, as Key Vault does.
func settledDeleted(name string, st state) *apiError {
	switch st {
	case deleted:
		return nil
	case deleting:
		return beingDeleted()
	}
	return deletedNotFound(name)
}

func (s *Server) getSecrets(r *http.Request) (int, any, *apiError) {
	p, e := parsePage(r)
	if e != nil {
		return 0, nil, e
	}
	now := s.begin()
	defer s.mu.Unlock()
	vw := s.view(r)
	keys := s.sortedKeys(now, active)
	items := make([]bundleOut, len(keys))
	for i, k := range keys {
		sec := s.vault.secrets[k]
		items[i] = vw.bundle(sec, sec.latest(), false, false)
	}
	return http.StatusOK, paginate(r, p, items, keys), nil
}

func (s *Server) getSecretVersions(r *http.Request) (int, any, *apiError) {
	name := r.PathValue("name")
	if e := checkName(name); e != nil {
		return 0, nil, e
	}
	p, e := parsePage(r)
	if e != nil {
		return 0, nil, e
	}
	now := s.begin()
	defer s.mu.Unlock()
	vw := s.view(r)
	var keys []string
	var items []bundleOut
	// A name with no readable secret lists as empty rather than 404.
	if sec, st := s.vault.lookup(name, now); st == active {
		// The service lists versions ordered by identifier, not by creation: callers that want
		// the newest must compare attributes.created (or GET the latest).
		vs := slices.Clone(sec.versions)
		slices.SortFunc(vs, func(a, b *version) int { return strings.Compare(a.id, b.id) })
		for _, v := range vs {
			keys = append(keys, v.id)
			items = append(items, vw.bundle(sec, v, false, true))
		}
	}
	return http.StatusOK, paginate(r, p, items, keys), nil
}

func (s *Server) getDeletedSecrets(r *http.Request) (int, any, *apiError) {
	p, e := parsePage(r)
	if e != nil {
		return 0, nil, e
	}
	now := s.begin()
	defer s.mu.Unlock()
	vw := s.view(r)
	keys := s.sortedKeys(now, deleted)
	items := make([]bundleOut, len(keys))
	for i, k := range keys {
		items[i] = vw.deletedBundle(s.vault.secrets[k], false)
	}
	return http.StatusOK, paginate(r, p, items, keys), nil
}

// sortedKeys lists the names in one state, sorted as the service pages them.
func (s *Server) sortedKeys(now time.Time, want state) []string {
	var keys []string
	for k, sec := range s.vault.secrets {
		if _, st := s.vault.lookup(sec.name, now); st == want {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func nameID(name, version string) string {
	if version == "" {
		return name
	}
	return name + "/" + version
}
