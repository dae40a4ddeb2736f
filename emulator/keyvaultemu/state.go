package keyvaultemu

import (
	"maps"
	"strings"
	"time"
)

// vault is the in-memory store. Secret names are case-insensitive in Key Vault, so the maps are
// keyed by the lower-cased name while each secret keeps the spelling it was created with.
type vault struct {
	secrets map[string]*secret
	// purging holds names whose purge is still settling; their reuse is refused until then.
	purging map[string]time.Time
}

type secret struct {
	name     string
	versions []*version // in creation order; the last one is the latest
	deleted  *deletion
	// visibleAt is set by a recover: reads find the secret again only from then on.
	visibleAt time.Time
}

type deletion struct {
	date      time.Time
	purgeAt   time.Time
	visibleAt time.Time // the deleted secret shows under /deletedsecrets from then on
}

type version struct {
	id          string
	value       string
	contentType string
	tags        map[string]string
	enabled     bool
	nbf, exp    *int64
	created     int64
	updated     int64
}

// state is where a name stands at one instant.
type state int

const (
	absent     state = iota
	active           // readable and writable
	recovering       // recovered, still settling: writable, not yet readable
	deleting         // deleted, still settling: not yet under /deletedsecrets
	deleted          // soft-deleted: recoverable or purgeable
	purging          // purged, still settling: the name cannot be reused yet
)

func (v *vault) reset() {
	v.secrets = map[string]*secret{}
	v.purging = map[string]time.Time{}
}

// sweep applies what time alone does: scheduled purges happen and settled purges free the name.
func (v *vault) sweep(now time.Time) {
	for k, sec := range v.secrets {
		if sec.deleted != nil && !now.Before(sec.deleted.purgeAt) {
			delete(v.secrets, k)
		}
	}
	for k, until := range v.purging {
		if !now.Before(until) {
			delete(v.purging, k)
		}
	}
}

func (v *vault) lookup(name string, now time.Time) (*secret, state) {
	key := strings.ToLower(name)
	sec := v.secrets[key]
	switch {
	case sec == nil:
		if _, ok := v.purging[key]; ok {
			return nil, purging
		}
		return nil, absent
	case sec.deleted != nil && now.Before(sec.deleted.visibleAt):
		return sec, deleting
	case sec.deleted != nil:
		return sec, deleted
	case now.Before(sec.visibleAt):
		return sec, recovering
	default:
		return sec, active
	}
}

func (sec *secret) latest() *version { return sec.versions[len(sec.versions)-1] }

// find returns the named version, or the latest for "".
func (sec *secret) find(id string) *version {
	if id == "" {
		return sec.latest()
	}
	for _, v := range sec.versions {
		if strings.EqualFold(v.id, id) {
			return v
		}
	}
	return nil
}

func (v *version) clone() *version {
	c := *v
	c.tags = maps.Clone(v.tags)
	if v.nbf != nil {
		n := *v.nbf
		c.nbf = &n
	}
	if v.exp != nil {
		e := *v.exp
		c.exp = &e
	}
	return &c
}
