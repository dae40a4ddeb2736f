// Package graph is appreg's Microsoft Graph adapter, the only package that imports
// msgraph-sdk-go. Client implements registrar.Directory over Graph v1.0: applications keyed by
// uniqueName and upserted with Prefer: create-if-missing, service principals upserted by appId,
// addPassword and removePassword, and a paged listing of the apps tagged appreg:managed. It
// returns registrar types only, never SDK models, and translates every failure at the boundary
// into a *registrar.Error whose Code says what to do (404 right after a write is
// CodeReplicating, 429 is CodeThrottled with the Retry-After hint, 5xx is CodeUnavailable) and
// whose message is Graph's error code and one-line message, never a body. The kiota pipeline
// underneath already retries 429/503/504 three times honouring Retry-After, so this package adds
// no retry of its own. A new password's secretText is handed over only inside a
// registrar.SecretValue.
package graph
