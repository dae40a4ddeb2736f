// Package azemu is the whole local Azure in one value: Entra ID, Microsoft Graph and Key Vault
// behind one HTTPS origin signed by one test CA, the App Service managed-identity endpoint on
// plain HTTP, and Service Bus over AMQP on plain TCP, exactly as the unmodified SDKs reach them
// with an endpoint override. All four share one token issuer and one tenant, so a
// client secret that Graph issued authenticates at Entra and the token it buys is accepted by
// Graph and Key Vault, and by nothing else.
//
// It is what `azemu serve` and `azemu run` run and what the end-to-end tests start in-process.
// It listens on exactly the three sockets endpoints.json names: the HTTPS origin, the
// managed-identity endpoint (plain HTTP) and Service Bus (AMQP); the HTTP emulators run without
// listeners of their own, mounted on the origin. Routing there: /v1.0/… is Graph; /secrets… and
// /deletedsecrets… are Key Vault; everything else is Entra (/{tenant}/…,
// /common/discovery/instance). Each emulator's test controls are under /_emu/<service>/… (entra,
// graph, keyvault, servicebus) in the one dialect of package emu; /_emu/endpoints returns the
// endpoints, /_emu/profile the profile and its seed, and POST /_emu/reset resets every service.
//
// Options.Profile says how harsh it is. Realistic, the default (of NewServer(nil), `azemu serve`,
// `azemu run` and so `make run`, and the end-to-end tests), is as harsh as Azure where appreg
// meets it: Graph's replicas lag 0.2-4 s behind every write and flap (graphemu.Realistic), so
// reads, lists, filters and new secrets at Entra are eventually consistent, and managed-identity
// tokens last 24 h and are cached by the platform with the roles they were issued with. Kind has
// neither, for fast tests of something else. Both have Entra's object quota, soft delete, the
// tenant's app management policy, AADSTS500011 for unknown resources and Graph's write limit:
// those cost nothing until a test meets them. Options.Seed (printed at startup, 0 picks one)
// repeats a run's lag; Options.Replication replaces the profile's lag.
//
// Where each service differs from Azure is written in its own package's doc.go. What azemu adds:
// one origin for three services (Azure has three hosts), and a seeded identity for appreg itself
// — an app with a client secret and a managed identity — holding Graph's
// Application.ReadWrite.OwnedBy, as the deployment guide asks of the real one.
package azemu
