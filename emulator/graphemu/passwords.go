package graphemu

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// maxPersonalPasswords is Entra's cap on passwords for apps that admit personal accounts.
const maxPersonalPasswords = 2

// defaultPasswordLifetime is addPassword's endDateTime when the request gives none.
const defaultPasswordLifetime = 2 // years

func errTooManyPasswords() reply {
	return fail(http.StatusBadRequest, "TooManyAppPasswords",
		"An application whose signInAudience includes personal Microsoft accounts can have at most %d password credentials.", maxPersonalPasswords)
}

// EditConflicts is how many credential edits were refused with a 500 because another edit on
// the same application was in flight, since the server started.
func (s *Server) EditConflicts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.editConflicts
}

// errConcurrentEdit is what Graph answers when two credential edits on one app overlap.
func errConcurrentEdit() reply {
	return fail(http.StatusInternalServerError, "InternalServerError",
		"Another credential update for this application is in progress. Retry the request.")
}

func (p *password) render(secretText *string) ordered {
	return ordered{
		{"customKeyIdentifier", nil},
		{"displayName", p.displayName},
		{"endDateTime", fmtCredential(p.end)},
		{"hint", p.hint},
		{"keyId", p.keyID},
		{"secretText", secretText},
		{"startDateTime", fmtCredential(p.start)},
	}
}

// addPasswordRequest is the documented body; other passwordCredential members are ignored, as
// Graph generates keyId, hint and secretText itself.
type addPasswordRequest struct {
	PasswordCredential *struct {
		DisplayName   *string `json:"displayName"`
		StartDateTime *string `json:"startDateTime"`
		EndDateTime   *string `json:"endDateTime"`
	} `json:"passwordCredential"`
}

func (s *Server) addPassword(c *call) reply {
	var req addPasswordRequest
	if len(strings.TrimSpace(string(c.body))) > 0 {
		if err := json.Unmarshal(c.body, &req); err != nil {
			return errUnreadableBody()
		}
	}
	now := s.now().UTC().Truncate(100 * time.Nanosecond)
	start, end := now, time.Time{}
	var displayName *string
	if pc := req.PasswordCredential; pc != nil {
		displayName = pc.DisplayName
		var bad bool
		if start, bad = parseDateTime(pc.StartDateTime, now); bad {
			return errInvalidValue("startDateTime", "PasswordCredential")
		}
		if end, bad = parseDateTime(pc.EndDateTime, time.Time{}); bad {
			return errInvalidValue("endDateTime", "PasswordCredential")
		}
	}
	if end.IsZero() {
		end = start.AddDate(defaultPasswordLifetime, 0, 0)
	}
	if !end.After(start) {
		return errInvalidValue("endDateTime", "PasswordCredential")
	}

	a, rep := s.beginCredentialEdit(c)
	if rep != nil {
		return *rep
	}
	c.wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.editing, a.id)
	if cur, ok := s.apps.get(a.id); !ok || cur != a || a.deleted {
		return errNotFound(a.id)
	}
	if rep := s.checkPolicy(a, start, end); rep != nil {
		return *rep
	}
	if personalAccounts(str(a.props, "signInAudience")) && a.livePasswords() >= maxPersonalPasswords {
		return errTooManyPasswords()
	}
	secret := newSecret()
	p := &password{
		keyID: strings.ToLower(s.ids()), displayName: displayName, hint: secret[:3],
		start: start, end: end, hash: sha256.Sum256([]byte(secret)),
		added: now, born: s.repl.write(),
	}
	a.compact()
	a.passwords = append(a.passwords, p)
	s.log.Info("password added", "app", a.id, "keyId", p.keyID, "hint", p.hint, "end", fmtCredential(end))
	body := append(ordered{{"@odata.context", c.base() + "/$metadata#microsoft.graph.passwordCredential"}}, p.render(&secret)...)
	return ok(http.StatusOK, body)
}

func (s *Server) removePassword(c *call) reply {
	var req struct {
		KeyID *string `json:"keyId"`
	}
	if err := json.Unmarshal(c.body, &req); err != nil {
		return errUnreadableBody()
	}
	if req.KeyID == nil || uuid.Validate(*req.KeyID) != nil {
		return errInvalidValue("keyId", "Application")
	}
	keyID := strings.ToLower(*req.KeyID)
	a, rep := s.beginCredentialEdit(c)
	if rep != nil {
		return *rep
	}
	c.wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.editing, a.id)
	if cur, ok := s.apps.get(a.id); !ok || cur != a || a.deleted {
		return errNotFound(a.id)
	}
	for _, p := range a.passwords {
		// The app is resolved on the request's replica, as every keyed write is; the password,
		// once the write reaches the writable replica, there: a password added moments ago is
		// removable, and one removed already is gone.
		if p.keyID == keyID && !p.removed {
			p.removed, p.unborn = true, s.repl.write()
			a.compact()
			s.log.Info("password removed", "app", a.id, "keyId", keyID)
			return noContent()
		}
	}
	return errBadRequest("No password credential found with keyId %s.", *req.KeyID)
}

// livePasswords counts the passwords the app has on the writable replica.
func (a *application) livePasswords() int {
	n := 0
	for _, p := range a.passwords {
		if !p.removed {
			n++
		}
	}
	return n
}

// compact forgets removed passwords once every replica knows they are gone.
func (a *application) compact() {
	a.passwords = slices.DeleteFunc(a.passwords, func(p *password) bool { return p.removed && p.unborn.settled() })
}

// beginCredentialEdit resolves and authorises the app of a credential operation and marks an
// edit in flight on it; a second edit arriving meanwhile gets Graph's 500.
func (s *Server) beginCredentialEdit(c *call) (*application, *reply) {
	p := c.perms()
	s.mu.Lock()
	defer s.mu.Unlock()
	a, rep := s.findApp(c, c.params["app"], false)
	if rep != nil {
		if !p.read {
			r := errDenied()
			return nil, &r
		}
		return nil, rep
	}
	if !p.canWrite(&a.object) {
		r := errDenied()
		return nil, &r
	}
	if s.editing[a.id] {
		s.editConflicts++
		r := errConcurrentEdit()
		return nil, &r
	}
	s.editing[a.id] = true
	return a, nil
}

// parseDateTime reads an optional DateTimeOffset; bad reports a malformed value.
func parseDateTime(v *string, def time.Time) (t time.Time, bad bool) {
	if v == nil {
		return def, false
	}
	t, err := time.Parse(time.RFC3339Nano, *v)
	if err != nil {
		return time.Time{}, true
	}
	return t.UTC().Truncate(100 * time.Nanosecond), false
}

// Secrets look like Entra's current ones: 40 characters, three random, the "8Q~" marker, then
// 34 more from the URL-safe set Entra uses.
const (
	secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
	secretPrefix   = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

func newSecret() string {
	return randomFrom(secretPrefix, 3) + "8Q~" + randomFrom(secretAlphabet, 34)
}

func randomFrom(alphabet string, n int) string {
	out := make([]byte, 0, n)
	limit := 256 - 256%len(alphabet) // reject the bias of the top bytes
	buf := make([]byte, 1)
	for len(out) < n {
		rand.Read(buf)
		if int(buf[0]) >= limit {
			continue
		}
		out = append(out, alphabet[int(buf[0])%len(alphabet)])
	}
	return string(out)
}
