// Package token issues and verifies the local Entra's access tokens: RS256 JWTs carrying the
// claims Microsoft Graph and Key Vault authorise on (aud, tid, appid, oid, roles, exp). The
// Entra emulator signs; the Graph and Key Vault emulators verify with the same Issuer, so a
// token is only good at the audience it was minted for, exactly as in Azure.
package token

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
)

// Claims are the access-token claims the emulators read. Field names follow Entra's v1 access
// tokens, which is what Graph and Key Vault receive for client_credentials.
type Claims struct {
	Issuer    string   `json:"iss"`
	Audience  string   `json:"aud"`
	TenantID  string   `json:"tid"`
	AppID     string   `json:"appid"`
	ObjectID  string   `json:"oid"`
	Subject   string   `json:"sub"`
	Roles     []string `json:"roles,omitempty"`
	IDType    string   `json:"idtyp,omitempty"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	ExpiresAt int64    `json:"exp"`
	Version   string   `json:"ver,omitempty"`
}

// HasRole reports whether the token carries an app role.
func (c Claims) HasRole(role string) bool { return slices.Contains(c.Roles, role) }

// Issuer signs and verifies tokens with one RSA key.
type Issuer struct {
	key   *rsa.PrivateKey
	keyID string
	now   func() time.Time
}

// NewIssuer makes a fresh signing key. now may be nil for time.Now; the emulators pass their
// injected clock so that token expiry follows test time.
func NewIssuer(now func() time.Time) (*Issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	sum := sha256.Sum256(key.PublicKey.N.Bytes())
	return &Issuer{key: key, keyID: base64.RawURLEncoding.EncodeToString(sum[:12]), now: now}, nil
}

// Sign returns a compact JWT. Zero time claims are filled in: issued now, valid for an hour.
func (i *Issuer) Sign(c Claims) (string, error) {
	now := i.now()
	if c.IssuedAt == 0 {
		c.IssuedAt = now.Unix()
	}
	if c.NotBefore == 0 {
		c.NotBefore = c.IssuedAt
	}
	if c.ExpiresAt == 0 {
		c.ExpiresAt = now.Add(time.Hour).Unix()
	}
	if c.Version == "" {
		c.Version = "1.0"
	}
	header, err := json.Marshal(map[string]string{"typ": "JWT", "alg": "RS256", "kid": i.keyID})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signingInput := b64(header) + "." + b64(payload)
	digest := sha256.Sum256([]byte(signingInput))
	sig, err := rsa.SignPKCS1v15(rand.Reader, i.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err
	}
	return signingInput + "." + b64(sig), nil
}

// Errors a verifier reports; callers turn them into the service's own 401 body.
var (
	ErrMalformed   = errors.New("token is malformed")
	ErrSignature   = errors.New("token signature is invalid")
	ErrExpired     = errors.New("token is expired")
	ErrNotYetValid = errors.New("token is not yet valid")
	ErrAudience    = errors.New("token audience is invalid")
)

// Verify checks signature, lifetime and audience. audience is compared without a trailing slash,
// because Entra mints "https://vault.azure.net" for the scope "https://vault.azure.net/.default"
// and "https://graph.microsoft.com/" for az's "https://graph.microsoft.com//.default", and
// ignoring case, as Entra compares resource URIs.
func (i *Issuer) Verify(raw, audience string) (Claims, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return Claims{}, ErrMalformed
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return Claims{}, ErrMalformed
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&i.key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
		return Claims{}, ErrSignature
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Claims{}, ErrMalformed
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Claims{}, ErrMalformed
	}
	now := i.now().Unix()
	if now >= c.ExpiresAt {
		return Claims{}, ErrExpired
	}
	// Entra allows five minutes of clock skew on nbf; so do we.
	if now+300 < c.NotBefore {
		return Claims{}, ErrNotYetValid
	}
	if !strings.EqualFold(strings.TrimSuffix(c.Audience, "/"), strings.TrimSuffix(audience, "/")) {
		return Claims{}, ErrAudience
	}
	return c, nil
}

// JWKS is the key set served at the OIDC jwks_uri.
func (i *Issuer) JWKS() map[string]any {
	pub := i.key.PublicKey
	return map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": i.keyID,
		"n": b64(pub.N.Bytes()),
		"e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}}}
}

// Bearer extracts the token from an Authorization header value, or "" when there is none.
func Bearer(header string) string {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
