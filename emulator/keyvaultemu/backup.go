package keyvaultemu

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// backupMagic opens every blob, as the service's own blobs open with a format marker.
var backupMagic = []byte("azemu-KeyVaultSecretBackupV1:")

// backupDoc is what a blob holds: every version of one secret, values included. It is sealed
// with the server's key, so a blob is opaque and restores only into the server that made it,
// much as a real backup restores only within its own geography.
type backupDoc struct {
	Name     string          `json:"name"`
	Versions []backupVersion `json:"versions"`
}

type backupVersion struct {
	ID          string            `json:"id"`
	Value       string            `json:"value"`
	ContentType string            `json:"contentType,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Enabled     bool              `json:"enabled"`
	NotBefore   *int64            `json:"nbf,omitempty"`
	Expires     *int64            `json:"exp,omitempty"`
	Created     int64             `json:"created"`
	Updated     int64             `json:"updated"`
}

func (s *Server) backupSecret(r *http.Request) (int, any, *apiError) {
	name := r.PathValue("name")
	if e := checkName(name); e != nil {
		return 0, nil, e
	}
	now := s.begin()
	defer s.mu.Unlock()
	sec, st := s.vault.lookup(name, now)
	if st != active {
		return 0, nil, secretNotFound(name)
	}
	doc := backupDoc{Name: sec.name}
	for _, v := range sec.versions {
		doc.Versions = append(doc.Versions, backupVersion{
			ID: v.id, Value: v.value, ContentType: v.contentType, Tags: v.tags, Enabled: v.enabled,
			NotBefore: v.nbf, Expires: v.exp, Created: v.created, Updated: v.updated,
		})
	}
	blob, err := s.seal(doc)
	if err != nil {
		return 0, nil, &apiError{status: http.StatusInternalServerError, code: "InternalServerError", message: "The backup could not be sealed."}
	}
	return http.StatusOK, map[string]string{"value": base64.RawURLEncoding.EncodeToString(blob)}, nil
}

func (s *Server) restoreSecret(r *http.Request) (int, any, *apiError) {
	var in blobIn
	if e := decodeBody(r, &in); e != nil {
		return 0, nil, e
	}
	if in.Value == nil {
		return 0, nil, badParameter("The backup blob is required: the request has no 'value'.")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(*in.Value, "="))
	if err != nil {
		return 0, nil, badParameter("Backup blob contains invalid data.")
	}
	doc, err := s.unseal(raw)
	if err != nil || checkName(doc.Name) != nil || len(doc.Versions) == 0 {
		return 0, nil, badParameter("Backup blob contains invalid data.")
	}

	now := s.begin()
	defer s.mu.Unlock()
	sec, st := s.vault.lookup(doc.Name, now)
	switch st {
	case deleting, purging:
		return 0, nil, beingDeleted()
	case deleted:
		return 0, nil, deletedButRecoverable(sec.name)
	case active, recovering:
		return 0, nil, &apiError{status: http.StatusConflict, code: "Conflict",
			message: "Secret " + sec.name + " already exists in this key vault; restore only works for a name that is not in use."}
	}
	sec = &secret{name: doc.Name}
	for _, bv := range doc.Versions {
		sec.versions = append(sec.versions, &version{
			id: bv.ID, value: bv.Value, contentType: bv.ContentType, tags: bv.Tags, enabled: bv.Enabled,
			nbf: bv.NotBefore, exp: bv.Expires, created: bv.Created, updated: bv.Updated,
		})
	}
	s.vault.secrets[strings.ToLower(doc.Name)] = sec
	return http.StatusOK, s.view(r).bundle(sec, sec.latest(), false, true), nil
}

func (s *Server) seal(doc backupDoc) ([]byte, error) {
	plain, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	gcm, err := s.gcm()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append(append([]byte{}, backupMagic...), nonce...)
	return gcm.Seal(out, nonce, plain, backupMagic), nil
}

func (s *Server) unseal(blob []byte) (backupDoc, error) {
	var doc backupDoc
	rest, ok := bytes.CutPrefix(blob, backupMagic)
	if !ok {
		return doc, errors.New("not an emulator backup")
	}
	gcm, err := s.gcm()
	if err != nil {
		return doc, err
	}
	if len(rest) < gcm.NonceSize() {
		return doc, errors.New("short backup")
	}
	plain, err := gcm.Open(nil, rest[:gcm.NonceSize()], rest[gcm.NonceSize():], backupMagic)
	if err != nil {
		return doc, err
	}
	err = json.Unmarshal(plain, &doc)
	return doc, err
}

func (s *Server) gcm() (cipher.AEAD, error) {
	block, err := aes.NewCipher(s.backupKey)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
