// Package keyvaultemu emulates the secrets part of the Azure Key Vault data plane closely enough that
// the unmodified azsecrets client (v1.5.1) and plain curl with Microsoft's documented REST requests
// work against it: HTTPS on loopback with the shared test CA, the 401 bearer challenge sent before
// any body is read, tokens checked for signature, lifetime, audience https://vault.azure.net and the
// vault's tenant, set/get (latest through /secrets/{name}/ or an empty version)/update/list/versions,
// soft delete with recover, purge and a settling delay, backup/restore, the documented limits,
// 25-item pages with an absolute nextLink, and the service's error bodies and headers. The test
// controls are the shared ones of package emu, as methods (InjectFault, Throttle, SetLatency,
// Stats, State, Reset, …) and under /_emu/keyvault/: faults and latency per REST operation
// (setSecret, getSecret, …), throttling with 429 + Retry-After, per-operation call counts, and a
// state of metadata (never values). Reset forgets every secret and deleted secret. With
// Options.NoListener it opens no socket and is reached through Handler (azemu's shared origin).
//
// Where it differs from the real service, on purpose or for want of a record:
//
//   - Any api-version is accepted and none changes behaviour; a missing one is 400 BadParameter
//     (the service's exact message is not on record). Authentication is checked first, so an
//     unauthenticated request always gets the 401 challenge, whatever else is wrong with it.
//   - Authorization: with Options.Authorizer (azemu wires the Resource Manager emulator) the
//     vault uses Azure RBAC, as one with enableRbacAuthorization: each operation needs its data
//     action (secrets/setSecret/action, getSecret/action, readMetadata/action for lists and
//     deleted secrets, update/action, delete, purge/action, recover/action, backup/action,
//     restore/action) at the secret's scope (<vault id>/secrets/<name>) or above, as the
//     caller's role assignments stood Options.PropagationDelay ago (default five seconds; Azure
//     takes up to ten minutes). A refusal is 403 Forbidden with innererror ForbiddenByRbac and
//     the service's "Caller is not authorized to perform action on resource." message (Caller,
//     Action, Resource, Assignment: (not found), DecisionReason 'DeniedWithNoValidRBAC', Vault).
//     Without an Authorizer any token of the tenant may do anything. No access policies,
//     network rules, CAE or PoP tokens. A token from another tenant gets AKV10032, a wrong
//     audience AKV10022, a foreign signature AKV10046; the texts for expired and malformed
//     tokens are approximations.
//   - Timing: deletes, purges and recoveries settle after Options.DeleteLag (default 500 ms of the
//     injected clock, not the seconds the service takes). While a delete settles, GET
//     /deletedsecrets/{name} is 404 "Deleted Secret not found" and writes to the name (set,
//     delete, recover, purge, restore) get 409 ObjectIsBeingDeleted; after a purge, set is 409
//     ObjectIsBeingDeleted until it settles; after a recover, reads are 404 until it settles but
//     writes go through (the service's behaviour for writes in that window is not on record).
//     Scheduled purges happen at scheduledPurgeDate, checked lazily on each request.
//   - Versions are listed ordered by version id, as the service does (not by creation). Secret and
//     deleted-secret lists are ordered by lower-cased name. Names are case-insensitive and keep the
//     spelling they were created with. Listing the versions of an unknown name gives an empty page.
//   - maxresults above 25 is capped at 25 (the service may refuse it with 400); below 1 is 400.
//     Skip tokens are opaque base64url JSON that resume after the last key returned, so pages stay
//     consistent while secrets are added.
//   - nbf and exp are informational, as documented for secrets: the value is returned outside the
//     window. Only a disabled version refuses to be read (403 Forbidden / SecretDisabled).
//   - Limits: name ^[0-9a-zA-Z-]{1,127}$ ("The request URI contains an invalid name: …"), value at
//     most 25,600 bytes, contentType at most 255 characters, at most 15 tags with names and values
//     of at most 512 characters, all 400 BadParameter; the messages for the size limits, a missing
//     value and bad JSON are the emulator's own wording. An empty value is accepted.
//   - Backup blobs are AES-GCM sealed with a per-server key and restore only into the same server.
//     Restoring over a live name is 409 Conflict with the emulator's own message.
//   - No certificate-backed secrets (kid, managed), no previousVersion, no outContentType
//     conversion, no secret rotation or Event Grid events, no purge protection.
//   - Response headers follow the service (x-ms-request-id, x-ms-keyvault-service-version,
//     x-ms-keyvault-region "local", x-ms-keyvault-network-info); identifiers and nextLinks use the
//     request's Host, so they read https://127.0.0.1:port/secrets/… rather than a vault DNS name.
//   - A 429 always carries Retry-After in whole seconds ("0" allowed) so tests can keep azcore's
//     back-off short; the service sends a positive value. Paths it does not serve get a JSON 404.
package keyvaultemu
