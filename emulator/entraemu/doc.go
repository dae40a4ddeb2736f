// Package entraemu emulates the parts of Microsoft Entra ID that the unmodified azidentity
// credentials call: the tenant's OpenID metadata and signing keys, the v2 token endpoint for the
// client_credentials grant with a client secret (client_secret_post or client_secret_basic), MSAL's
// instance discovery, and the App Service managed-identity endpoint (api-version 2019-08-01, plain
// HTTP on a separate loopback listener, guarded by X-IDENTITY-HEADER). Tokens are RS256 JWTs from
// emulator/internal/token with aud (the scope less "/.default"), tid, appid, oid, sub, idtyp=app
// and, for Microsoft Graph only, the principal's app roles. Secrets are checked by a
// ClientAuthenticator (the Graph emulator), so a secret works exactly while it is a live password
// of an app that has a service principal (the Graph emulator answers that from a random replica,
// so a new secret can be accepted, then refused with AADSTS7000215, until it settles). A token is
// issued only for a resource the tenant knows (AADSTS500011 otherwise, also at the managed-identity
// endpoint): Graph, Key Vault and Service Bus by URI or application ID (DefaultResources),
// whatever Options.Resources, AddResource or POST /_emu/entra/resources {"resource"} add (the
// Resource Manager and FHIR emulators add their audiences so), and the directory's own apps when
// the ClientAuthenticator is a ResourceDirectory; resources compare without case or a trailing
// slash, as Entra compares them. With Options.CacheManagedIdentityTokens (azemu's realistic
// profile, with 24-hour tokens) the managed-identity endpoint hands out the token it issued
// before, with the roles the identity had then, until five minutes before it expires, as the App
// Service platform does: a role granted meanwhile reaches no token, and Graph answers 403 until a
// new one; ForgetTokens or DELETE /_emu/entra/tokens ends the cache early. Errors are Entra's
// JSON bodies with AADSTS codes 900144, 70003, 70011, 28000, 1002012, 500011, 7000218, 700016,
// 7000215, 7000222, 7000229, 90002 and 900561.
// The test controls are the shared ones of package emu, as methods (InjectFault, Throttle,
// SetLatency, Stats, State, Reset, …) and under /_emu/entra/, targeting OpToken and OpMSI; State
// counts the tokens issued per client and Reset forgets them and the managed-identity cache. With Options.NoListener it opens
// no socket: the caller mounts Handler and MSIHandler (azemu's shared origin and MSI listener).
//
// Where it differs from Entra: one tenant; no certificate or federated credentials, no
// authorization-code, device-code, refresh-token or on-behalf-of flows, no id tokens; the
// AADSTS500011 message names the tenant by ID (Entra names it by display name) and a resource is
// checked after the client's secret; app tokens always last 3599 s, carry the v1 issuer
// https://sts.windows.net/{tid}/ and no xms_cc/CAE claims (the claims parameter is ignored); the managed-identity endpoint selects a
// user-assigned identity by client_id only (object_id and mi_res_id get a 400) and its error
// bodies and the status for a bad X-IDENTITY-HEADER (401) are approximations; the exact order in
// which Entra checks parameters is not known and may differ.
package entraemu
