// Package registrar is appreg's domain: it turns a registration request into an Entra ID
// application, its service principal and one client secret held only in Key Vault, and keeps
// that secret rotated with overlap. It owns the small interfaces it consumes (Directory for
// Microsoft Graph, SecretStore for Key Vault, Publisher for Service Bus) and knows nothing of
// the SDKs behind them, so every rule here — validation, the idempotent saga, the rotation and
// retirement policy — is tested with hand-written fakes and again end to end over the real wire.
//
// There is no database: every decision is recomputed from Graph (the app and its passwords) and
// Key Vault (the secret versions and their tags), which is what makes redelivery safe.
package registrar
