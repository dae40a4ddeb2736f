// Package azemu is the whole local Azure in one value: Entra ID, Microsoft Graph, Key Vault,
// Azure Resource Manager (role assignments, subscriptions) and FHIR services behind one HTTPS
// origin signed by one test CA, the App Service managed-identity endpoint on plain HTTP, and
// Service Bus over AMQP on plain TCP, exactly as the unmodified SDKs reach them with an endpoint
// override. All share one token issuer and one tenant, so a client secret that Graph issued
// authenticates at Entra and the token it buys is accepted by the service it names, and by
// nothing else. Key Vault, Service Bus (for Entra tokens) and the FHIR services authorize
// through Resource Manager's role assignments, as Azure RBAC does, with propagation delays.
//
// It is what `azemu serve` and `azemu run` run and what the end-to-end tests start in-process.
// It listens on exactly the three sockets endpoints.json names: the HTTPS origin, the
// managed-identity endpoint (plain HTTP) and Service Bus (AMQP); the HTTP emulators run without
// listeners of their own, mounted on the origin. Routing there: /v1.0/… is Graph; /secrets… and
// /deletedsecrets… are Key Vault; /fhir/<workspace>-<fhir>/… are the FHIR services;
// /subscriptions…, /tenants, /providers/… and /metadata/endpoints are Resource Manager;
// everything else is Entra (/{tenant}/…, /common/discovery/instance). Each emulator's test
// controls are under /_emu/<service>/… (entra, graph, keyvault, servicebus, arm, fhir) in the one
// dialect of package emu; /_emu/endpoints returns the endpoints, /_emu/profile the profile and
// its seed, and POST /_emu/reset resets every service.
//
// Options.Profile says how harsh it is. Realistic, the default (of NewServer(nil), `azemu serve`,
// `azemu run` and so `make run`, and the end-to-end tests), is as harsh as Azure where appreg
// meets it: Graph's replicas lag 0.2-4 s behind every write and flap (graphemu.Realistic), so
// reads, lists, filters and new secrets at Entra are eventually consistent, and managed-identity
// tokens last 24 h and are cached by the platform with the roles they were issued with. Kind has
// neither, for fast tests of something else. Both have Entra's object quota, soft delete, the
// tenant's app management policy, AADSTS500011 for unknown resources, Graph's write limit, and
// data-plane RBAC on Key Vault, Service Bus, Resource Manager and FHIR: those cost nothing until
// a test meets them. Options.Seed (printed at startup, 0 picks one) repeats a run's lag;
// Options.Replication replaces the profile's lag.
//
// Where each service differs from Azure is written in its own package's doc.go. What azemu adds:
// one origin for every HTTPS service (Azure has a host each); one subscription
// (armemu.DefaultSubscriptionID) with resource group "azemu" holding the vault
// (vaults/azemu), the Service Bus namespace (namespaces/azemu) and the FHIR services
// (Options.FHIRServices, by default workspace "azemu", service "fhir", served at
// /fhir/azemu-fhir), all named in endpoints.json; and the identities and role assignments a
// deployment makes (infra/): appreg itself — an app with a client secret (appreg-handler) and a
// managed identity — holds Graph's Application.ReadWrite.OwnedBy, Key Vault Secrets Officer on
// the vault, Azure Service Bus Data Sender and Data Receiver on the namespace, and Role Based
// Access Control Administrator on each FHIR service under the condition that limits it to FHIR
// Data Reader, Writer and Exporter (Options.DelegatedFHIRRoles) for service principals; an
// operator client (appreg-operator) owns the subscription and holds Secrets Officer and Service
// Bus Data Owner, as the person who deployed appreg would. These seeded assignments are in force
// at once and survive Reset; anything granted later waits out each data plane's propagation
// delay. The Service Bus connection string's SAS key still holds every right, as a namespace's
// RootManageSharedAccessKey does.
package azemu
