// Package e2e runs appreg the way Azure runs it, across processes, on one machine: the funchost
// binary hosts the staged dist/ (host.json, function.json files, the handler binary), the handler
// signs in through the local Entra's managed-identity endpoint, the appreg CLI enqueues and waits,
// and the local Azure (emulator/azemu) plays Entra, Graph, Key Vault, Service Bus, Resource Manager
// and the FHIR service. Only test files live here; `go test ./e2e` builds the binaries once per
// run.
package e2e
