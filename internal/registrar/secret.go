package registrar

import (
	"fmt"
	"io"
	"log/slog"
)

const redacted = "[REDACTED]"

// SecretValue carries a client secret between addPassword and the Key Vault write. Every way Go
// has of printing a value — fmt verbs, slog, JSON — prints "[REDACTED]", so a secret that strays
// into a log line, an error or an event is still not disclosed. Only Reveal returns the text, and
// only the Key Vault adapter calls it.
type SecretValue struct{ text string }

// NewSecretValue wraps a secret the directory returned.
func NewSecretValue(text string) SecretValue { return SecretValue{text: text} }

// Reveal returns the secret text. Call it only to hand the value to the secret store.
func (s SecretValue) Reveal() string { return s.text }

// IsZero reports whether no secret is held.
func (s SecretValue) IsZero() bool { return s.text == "" }

func (s SecretValue) String() string               { return redacted }
func (s SecretValue) GoString() string             { return redacted }
func (s SecretValue) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (s SecretValue) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (s SecretValue) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Format covers every verb, including %x and %q, which would otherwise bypass String.
func (s SecretValue) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }
