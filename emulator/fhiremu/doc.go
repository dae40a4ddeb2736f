// Package fhiremu emulates Azure Health Data Services FHIR services as a client registered by
// appreg meets them: GET [base]/metadata without a token (a CapabilityStatement whose security
// block names OAuth and the tenant's token and authorize URIs), GET [base]/Patient (a searchset
// Bundle, _count per page, default 10, at most 1000, with a next link) and GET
// [base]/Patient/{id}, over three seeded synthetic patients per service. Each service is served
// at /fhir/<workspace>-<fhir> (or /fhir/<service> for an Azure API for FHIR id), and that base URL
// is the audience its tokens must carry.
//
// Every other request needs a bearer token that the shared issuer signed, unexpired, for the
// service's base URL (with or without a trailing slash), from the tenant (issuer
// https://sts.windows.net/{tid}/ or {authority}/{tid}/v2.0); scopes are not checked, as the
// service does not. Anything else is 401 with WWW-Authenticate: Bearer authorization_uri=
// "{authority}/{tenant}", resource_id="{base}", realm="{base}" and the OperationOutcome
// {"resourceType":"OperationOutcome","id":"<32 hex>","issue":[{"severity":"error","code":"login",
// "diagnostics":"Authentication failed."}]}. A valid token whose oid holds no FHIR data role on
// the service's ARM id, as Azure RBAC (the Resource Manager emulator, through Authorizer) stood
// one propagation delay ago, is 403 with code "forbidden" and "Authorization failed.". So a new
// role assignment takes effect, and a removed one stops working, PropagationDelay late (default
// five seconds; /_emu/fhir/propagation changes it).
//
// The test controls are the shared ones of package emu under /_emu/fhir/, targeting OpMetadata,
// OpSearch and OpRead (a fault answers with an OperationOutcome of its status); State lists the
// services.
//
// Where it differs from the service: read-only (any other interaction is 405 once authorized;
// the service would act on it) and Patient only (other types are 404 not-supported); no search
// parameters but _count and the emulator's own continuation token ct; no total, no _summary, no
// SMART scopes (the FHIR SMART User role is treated as a data role like any other); the
// CapabilityStatement is abbreviated and names the v2 endpoints of the local Entra; the exact
// wording of 400 and 404 diagnostics is the emulator's own. The 401 and 403 bodies and the
// challenge are the service's.
package fhiremu
