// Package azauth builds the one azcore.TokenCredential the handler and the CLI act with, from
// plain values that internal/config has already read and validated: a client secret (the local
// emulator, or a developer's own app registration) or a managed identity (Azure). It never falls
// back from one to the other and never consults a chain of sources, so the identity that acts,
// and therefore the permissions it has, is always the one configured. It also builds the
// *http.Client every SDK in the process shares, trusting an extra CA (the emulator's ca.pem) on
// top of the system roots.
package azauth
