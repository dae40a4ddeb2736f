// Package keyvault is the registrar's Key Vault adapter: it implements registrar.SecretStore with
// the unmodified azsecrets client, so one client secret per managed app lives in one vault as a
// series of versions carrying the registrar's tags, nbf and exp. It reads metadata only (the value
// GetSecret returns is dropped at once), writes the value it is handed exactly once, and turns
// every SDK or transport failure into a *registrar.Error whose message names Key Vault's error code
// but never carries a request or response body. Retries of 429 and 5xx are azcore's; this package
// adds none of its own.
package keyvault
