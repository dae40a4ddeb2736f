// Package emu is what every emulator under emulator/ shares, so that a test drives Entra, Graph,
// Key Vault and Service Bus in one dialect: the test controls (a fault queue, throttling,
// standing latency, per-operation statistics, a state snapshot and reset) with one Go API and one
// JSON form under /_emu/<service>/, one error body for control errors, and the listener, client
// and shutdown helpers that give each emulator httptest.Server's shape. Data-plane routing,
// replies and error bodies stay in each service's package: matching the real service is the
// point, and an injected fault is rendered in that service's own error shape.
//
// Every service serves the same routes (JSON in and out, no authentication: loopback only):
//
//	GET    /_emu/<service>/faults     {"faults":[Fault…]} still armed, with the calls left
//	POST   /_emu/<service>/faults     a Fault: {"operation","status","code","message","latencyMs","retryAfterSeconds","count","probability","forMs"}
//	DELETE /_emu/<service>/faults     drop every fault and throttle
//	POST   /_emu/<service>/throttle   {"operation","retryAfterSeconds","count"}: 429 (or the service's equivalent)
//	GET    /_emu/<service>/latency    {"latency":[{"operation","latencyMs"}…]}
//	PUT    /_emu/<service>/latency    {"operation","latencyMs"}: every call of operation waits that long; 0 removes it
//	DELETE /_emu/<service>/latency    remove every standing latency
//	GET    /_emu/<service>/stats      {"operations":{op: calls},"faultsInjected":n}
//	GET    /_emu/<service>/state      the service's contents, never a secret value
//	POST   /_emu/<service>/reset      Reset
//
// and the same Go methods on each Server (Controls, embedded): InjectFault, ClearFaults, Faults,
// Throttle, SetLatency, Latency, Stats and Reset; each Server adds its own typed State. Service
// specific controls (Graph's replication, quota, policy and write limit, Entra's resources and
// token cache, Service Bus's dropped connections) sit under the same prefix. Control errors are
// {"error":{"code","message"}} with 400, 404 or 405.
//
// Reset has one meaning everywhere: it clears faults, throttles, latency and statistics, and
// empties the service's data down to what was seeded when it was created (azemu's own identity in
// Graph; Service Bus keeps its entities but not their messages). Certificates, signing keys,
// tenants and open connections survive, so clients and cached tokens keep working.
package emu
