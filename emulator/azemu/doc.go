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
// endpoints and POST /_emu/reset resets every service.
//
// Where each service differs from Azure is written in its own package's doc.go. What azemu adds:
// one origin for three services (Azure has three hosts), and a seeded identity for appreg itself
// — an app with a client secret and a managed identity — holding Graph's
// Application.ReadWrite.OwnedBy, as the deployment guide asks of the real one.
package azemu
