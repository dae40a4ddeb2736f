package registrar

import "time"

// EventType is the Subject of an outcome event.
type EventType string

const (
	EventRegistered EventType = "registered"
	EventRotated    EventType = "rotated"
	EventRejected   EventType = "rejected"
	EventFailed     EventType = "failed"
	EventRetired    EventType = "retired"
	// EventAccessVerified: the client read every FHIR service it was granted, with its secret.
	EventAccessVerified EventType = "access-verified"
	// EventAccessUnverified: access was granted but not proven (see reasons).
	EventAccessUnverified EventType = "access-unverified"
	// EventDeregistered: the client's roles, passwords, service principal and app are gone,
	// and its Key Vault secret is disabled.
	EventDeregistered EventType = "deregistered"
)

// Event is an outcome published on the events topic. It carries identifiers, never a secret:
// consumers read the secret from Key Vault with their own identity.
type Event struct {
	Type               EventType `json:"type"`
	RequestID          string    `json:"requestId"`
	ClientName         string    `json:"clientName,omitempty"`
	TenantID           string    `json:"tenantId,omitempty"`
	AppID              string    `json:"appId,omitempty"`
	AppObjectID        string    `json:"appObjectId,omitempty"`
	ServicePrincipalID string    `json:"servicePrincipalId,omitempty"`
	KeyID              string    `json:"keyId,omitempty"`
	SecretURI          string    `json:"secretUri,omitempty"`
	ExpiresOn          time.Time `json:"expiresOn,omitzero"`
	// Verified says whether the new secret signed in at Entra before the event was published;
	// absent when no new secret was issued or verification is switched off.
	Verified *bool `json:"verified,omitempty"`
	// FHIRAccess says, per FHIR service, which roles the client holds and whether reading the
	// service with its secret has been proven.
	FHIRAccess []FHIRAccessStatus `json:"fhirAccess,omitempty"`
	// RevokedKeyIDs lists the passwords a revoking rotation removed before announcing itself.
	RevokedKeyIDs []string `json:"revokedKeyIds,omitempty"`
	// StillValidKeyIDs lists, on a failed revoking rotation, the passwords that could not be
	// removed and still sign in: an operator must remove them by hand.
	StillValidKeyIDs []string `json:"stillValidKeyIds,omitempty"`
	Reasons          []Reason `json:"reasons,omitempty"`
	// CommandID is the MessageId of the command that produced the event.
	CommandID  string    `json:"commandId,omitempty"`
	OccurredAt time.Time `json:"occurredAt"`
}

// MessageID is the Service Bus MessageId of the event: duplicate detection collapses the resends
// a redelivered command causes. A command sent under another MessageId than its requestId — a
// dead letter resubmitted by `appreg dlq resubmit` — gets ids of its own, so that its outcome is
// not dropped as a duplicate of the original's.
func (e Event) MessageID() string {
	id := e.RequestID + ":" + string(e.Type)
	if e.CommandID != "" && e.CommandID != e.RequestID {
		id += ":" + shortHash(e.CommandID)[:8]
	}
	return id
}

// Reason is one machine-readable cause of a rejection or failure.
type Reason struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Reason codes of "failed" events that are not error codes.
const (
	// ReasonRevocationIncomplete heads the reasons of a failed revoking rotation.
	ReasonRevocationIncomplete = "revocation_incomplete"
	// ReasonDeadLettered is a command Service Bus dead-lettered, announced by the scheduler.
	ReasonDeadLettered = "dead_lettered"
	// ReasonLifetimeClamped, on a registered or rotated event, says the secret is shorter-lived
	// than asked because a tenant policy refused the lifetime.
	ReasonLifetimeClamped = "lifetime_clamped"
	// ReasonAccessNotEffective: a FHIR service still refused the client at the deadline.
	ReasonAccessNotEffective = "fhir_access_not_effective"
	// ReasonAccessNotProvable: reading the service cannot work (it refuses the token itself).
	ReasonAccessNotProvable = "fhir_access_not_provable"
)

// Rotation reasons.
const (
	ReasonNearExpiry  = "near-expiry"
	ReasonOnDemand    = "on-demand"
	ReasonCompromised = "compromised"
)

// RotationJob asks RotateSecret to give one client a new secret.
//
// KeyID names the credential being replaced; a job whose KeyID is no longer the latest Key Vault
// version's has already been done. On-demand jobs from the CLI cannot know the keyId and carry
// RequestedAt instead: a latest version created after it means the job is done.
type RotationJob struct {
	ClientName  string    `json:"clientName"`
	AppID       string    `json:"appId,omitempty"`
	KeyID       string    `json:"keyId,omitempty"`
	Reason      string    `json:"reason"`
	RevokeOld   bool      `json:"revokeOld,omitempty"`
	RequestedAt time.Time `json:"requestedAt,omitzero"`
}

// MessageID is the job's Service Bus MessageId: one job per credential being replaced, so two
// scheduler runs that both see a secret due enqueue it once.
func (j RotationJob) MessageID() string {
	if j.KeyID != "" {
		return "rotate:" + j.AppID + ":" + j.KeyID
	}
	return "rotate:" + j.ClientName + ":" + j.RequestedAt.UTC().Format("20060102T150405.000000000Z")
}

// RequestID is the requestId of the events a job produces.
func (j RotationJob) RequestID() string { return j.MessageID() }
