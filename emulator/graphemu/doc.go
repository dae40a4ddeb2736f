// Package graphemu emulates the slice of Microsoft Graph v1.0 that app registration needs, over
// HTTPS with the shared test CA: applications (create, get by id, (appId='…') or
// (uniqueName='…'), PATCH by id or appId, the uniqueName upsert with Prefer: create-if-missing
// answering 201 with the entity or 204, delete), addPassword and removePassword, service
// principals (create, get, PATCH, the (appId='…') upsert, delete), owners ($ref add and remove,
// list) and directoryObjects/{id}. Collections take $filter (eq, in, startswith, any() on string
// collections, and, or, parentheses; ne, not and endswith only with ConsistencyLevel: eventual),
// $select, $top (default 100, at most 999), $count with eventual consistency, and page with
// absolute @odata.nextLink URLs. Bodies may be gzip-compressed, as kiota sends them;
// @odata.type and other annotations are ignored. Routing works on the path split before
// unescaping, so key values may contain any character. Every response carries request-id,
// client-request-id (echoed) and x-ms-ags-diagnostic; entities come with Graph's OData
// Content-Type and @odata.context; errors use the {"error":{code, message, details?,
// innerError{date, request-id, client-request-id}}} envelope with Graph's codes
// (Request_ResourceNotFound, Request_BadRequest with NoBackingApplicationObject details,
// Request_UnsupportedQuery, Request_MultipleObjectsWithSameKeyValue, InvalidAuthenticationToken,
// Authorization_RequestDenied, TooManyAppPasswords, TooManyRequests). Bearer tokens must be
// signed by the configured token.Issuer, unexpired, for the tenant, with audience
// https://graph.microsoft.com or Graph's application ID. Permissions follow the token's app roles: Application.ReadWrite.All
// writes everything; Application.ReadWrite.OwnedBy creates apps and service principals (and
// becomes their owner), reads every app (as Graph lets it list the whole tenant) and writes only
// what it owns, else 403; read roles only read; no role gets 403 everywhere; adding owners needs
// Application.ReadWrite.All, as Graph documents. Server implements entra.ClientAuthenticator, so a
// secret works at the Entra emulator exactly while it is a live, replicated password of an app
// with a service principal. Secrets are stored only as SHA-256 hashes and never logged. Test
// controls are the shared ones of package emu, as methods (InjectFault, Throttle, SetLatency,
// Stats, State, Reset, …) and under /_emu/graph/, targeting the Op constants; Graph adds
// SetReplicationLag and Replicate (/_emu/graph/lag, /_emu/graph/replicate), and SeedClient,
// SeedManagedIdentity and GrantAppRoles for azemu. Reset deletes everything that was not seeded
// and switches replication lag off. With Options.NoListener it opens no socket and is reached
// through Handler (azemu's shared origin).
//
// Where it differs from Graph: one tenant and only applications and service principals as
// directory objects (no users or groups; an owner must be a service principal); deletion is
// permanent (DELETE /directory/deletedItems/{id} answers 404, as for an object not deleted; no
// listing or restore), and deleting an app deletes its service
// principal at once; only the properties listed in schema.go exist, key and certificate
// credentials are stored verbatim and never validated, service principals have no credentials
// of their own; $orderby, $search, $expand and $skip are refused, filters compare strings
// case-insensitively and support the operators above only; lists are in creation order; the
// messages of some errors are approximations (duplicate uniqueName gets 409, an unknown keyId in
// removePassword gets 400 "No password credential found with keyId …" as observed in the field,
// overlapping credential edits on one app get 500, which only shows when an injected latency
// makes them overlap); replication lag is a switch, not a random delay, and list queries are
// never stale; new apps default to signInAudience AzureADandPersonalMicrosoftAccount as the
// Graph documentation shows, limiting them to two passwords; no Location header on 201, no
// throttling unless injected, no request size other than the 4 MB body limit.
package graphemu
