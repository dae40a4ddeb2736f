// Package graphemu emulates the slice of Microsoft Graph v1.0 that app registration needs, over
// HTTPS with the shared test CA: applications (create, get by id, (appId='…') or
// (uniqueName='…'), PATCH by id or appId, the uniqueName upsert with Prefer: create-if-missing
// answering 201 with the entity or 204, delete), addPassword and removePassword, service
// principals (create, get, PATCH, the (appId='…') upsert, delete), owners ($ref add and remove,
// list), directoryObjects/{id}, the recycle bin (/directory/deletedItems/microsoft.graph.application
// and …servicePrincipal listed, /directory/deletedItems/{id} read, restored with POST …/restore and
// purged with DELETE) and the tenant's default app management policy
// (/policies/defaultAppManagementPolicy, GET with Policy.Read.All, PATCH with
// Policy.ReadWrite.ApplicationConfiguration). Collections take $filter (eq, in, startswith, any()
// on string collections, and, or, parentheses; ne, not and endswith only with ConsistencyLevel:
// eventual), $select, $top (default 100, at most 999), $count with eventual consistency, and page
// with absolute @odata.nextLink URLs. Bodies may be gzip-compressed, as kiota sends them;
// @odata.type and other annotations are ignored. Routing works on the path split before
// unescaping, so key values may contain any character. Every response carries request-id,
// client-request-id (echoed) and x-ms-ags-diagnostic; entities come with Graph's OData
// Content-Type and @odata.context; errors use the {"error":{code, message, details?,
// innerError{date, request-id, client-request-id}}} envelope with Graph's codes
// (Request_ResourceNotFound, Request_BadRequest with NoBackingApplicationObject details,
// Request_UnsupportedQuery, Request_MultipleObjectsWithSameKeyValue, InvalidAuthenticationToken,
// Authorization_RequestDenied, Directory_QuotaExceeded, CredentialInvalidLifetimeAsPerAppPolicy,
// CredentialTypeNotAllowedAsPerAppPolicy, TooManyAppPasswords, TooManyRequests). Bearer tokens
// must be signed by the configured token.Issuer, unexpired, for the tenant, with Graph's audience
// in any form Graph takes (https://graph.microsoft.com with or without a trailing slash, in any
// case, or Graph's application ID 00000003-0000-0000-c000-000000000000). Permissions follow the
// token's app roles: Application.ReadWrite.All writes everything; Application.ReadWrite.OwnedBy
// creates apps and service principals (and becomes their owner), reads every app (as Graph lets
// it list the whole tenant) and writes only what it owns, else 403; read roles only read; no role
// gets 403 everywhere; adding owners needs Application.ReadWrite.All, as Graph documents.
//
// As harsh as Graph where appreg meets it:
//   - Replication (Options.Replication, SetReplication, /_emu/graph/replication): Graph serves each
//     request from one of several replicas, and each learns of a write after its own random delay
//     (seeded: Options.Seed, Seed). A new or changed app, service principal or password, a delete
//     and a restore are therefore invisible (404, NoBackingApplicationObject, a stale version,
//     missing from lists and $filter results), then visible, then sometimes invisible again until
//     every replica has them. Keyed writes find their object on a replica too; the alternate-key
//     upserts are served by the writable replica and converge. Replicate
//     (POST /_emu/graph/replicate) settles everything at once. The zero Replication has no lag;
//     Realistic is azemu's default.
//   - Server implements entraemu.ClientAuthenticator, so a secret works at the Entra emulator
//     while it is a live password of an app with a service principal, as one random replica has
//     them: a new secret can be accepted and then refused (AADSTS7000215) before it settles. It
//     implements entraemu.ResourceDirectory too: an app with a service principal is a token
//     resource by appId or identifierUri.
//   - Soft delete: deleting an app also deletes its service principal; both stay in the recycle
//     bin for 30 days (on the injected clock), the app keeps its uniqueName (creating it again is
//     400 "Another object with the same value for property uniqueName already exists.", as for a
//     live duplicate) until it is purged.
//   - Quota (Options.ObjectQuota, SetObjectQuota, /_emu/graph/quota): a principal creates at most
//     250 apps and service principals, soft-deleted ones included, then gets 400
//     Directory_QuotaExceeded.
//   - App management policy (SetAppManagementPolicy, /_emu/graph/policy, or Graph's PATCH): an
//     enabled passwordLifetime restriction refuses addPassword beyond maxLifetime with 400
//     CredentialInvalidLifetimeAsPerAppPolicy, passwordAddition refuses every password with 400
//     CredentialTypeNotAllowedAsPerAppPolicy, each for apps created after its
//     restrictForAppsCreatedAfterDateTime.
//   - Write throttling (Options.WriteQuota, SetWriteQuota, /_emu/graph/writequota): directory
//     writes of one calling app in the tenant share a token bucket of Graph's 3,000 writes per
//     150 s; past it, 429 TooManyRequests with innerError.code "429", a fractional Retry-After
//     until the next write is allowed, x-ms-throttle-scope and x-ms-throttle-information
//     WriteLimitExceeded; above 80 % a successful write carries x-ms-throttle-limit-percentage.
//   - Indexes: lookups by id, appId and uniqueName, and lists whose $filter demands an equality on
//     an indexed property (id, appId, uniqueName, tags/any, identifierUris/any) cost the same at
//     10 and 10,000 apps, as Graph's do; a page costs what it returns.
//
// Secrets are stored only as SHA-256 hashes and never logged. Test controls are the shared ones
// of package emu, as methods (InjectFault, Throttle, SetLatency, Stats, State, Reset, …) and
// under /_emu/graph/, targeting the Op constants; Graph adds the ones above, and SeedClient,
// SeedManagedIdentity and GrantAppRoles for azemu. Reset deletes everything that was not seeded,
// purges the recycle bin, restores the default policy and the replication, quotas and write
// limit the server was created with, and settles replication. With Options.NoListener it opens
// no socket and is reached through Handler (azemu's shared origin).
//
// Where it differs from Graph: one tenant and only applications and service principals as
// directory objects (no users or groups; an owner must be a service principal); restoring an app
// leaves its service principal in the recycle bin; only the properties listed in schema.go
// exist, key and certificate credentials are stored verbatim and never validated, service
// principals have no credentials of their own; $orderby, $search, $expand and $skip are refused,
// filters compare strings case-insensitively and support the operators above only; lists are in
// creation order; replication is modelled, not measured: Graph publishes no figures, a replica
// that missed two quick changes serves the version before the last one, removePassword finds a
// password on the writable replica once its app resolves, the app management policy and the
// quota apply at once everywhere, and with a fixed seed a run repeats only as far as the order of
// requests does; the Directory_QuotaExceeded status (400) and the wording of the policy
// refusals are as reported in the field, not documented; the messages of some errors are
// approximations (an unknown keyId in removePassword gets 400 "No password credential found with
// keyId …" as observed in the field, overlapping credential edits on one app get 500, which only
// shows when an injected latency makes them overlap); throttled writes do not spend the bucket,
// and only the write limit is modelled (not resource units or the tenant-wide limit); new apps
// default to signInAudience AzureADandPersonalMicrosoftAccount as the Graph documentation shows,
// limiting them to two passwords; no Location header on 201, no request size other than the
// 4 MB body limit.
package graphemu
