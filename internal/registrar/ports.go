package registrar

import (
	"context"
	"slices"
	"strings"
	"time"
)

// Tags on Entra applications. TagManaged marks apps appreg created; it is the only licence the
// registrar has to touch an app, because Application.ReadWrite.OwnedBy alone would also let it
// edit apps an operator made it owner of by hand.
const (
	TagManaged      = "appreg:managed"
	TagClientPrefix = "appreg:client:"
)

// Key Vault tag names, written on every secret version the registrar stores.
const (
	KVTagManagedBy     = "managed-by"
	KVManagedByValue   = "appreg"
	KVTagClientName    = "clientName"
	KVTagAppID         = "appId"
	KVTagAppObjectID   = "appObjectId"
	KVTagKeyID         = "keyId"
	KVTagTenantID      = "tenantId"
	KVTagRequestID     = "requestId"
	KVTagLifetimeDays  = "lifetimeDays"
	KVTagPreviousKeyID = "previousKeyId"
	// KVTagRevokeOld on a version says every other password of the app must go: the version
	// was written by a revoking (compromised) rotation. It is the record that lets the scheduler
	// finish a revocation whose job died, so a leaked password cannot outlive a crash.
	KVTagRevokeOld = "revokeOld"
)

// PasswordDisplayPrefix starts the displayName of every password the registrar adds, so the
// orphan sweep can tell its own half-finished credentials from ones a person added.
const PasswordDisplayPrefix = "appreg"

// App is an Entra application as the registrar sees it.
type App struct {
	ObjectID       string
	AppID          string
	UniqueName     string
	DisplayName    string
	SignInAudience string
	Notes          string
	Tags           []string
	RedirectURIs   []string
	Passwords      []Password
	Created        time.Time // zero when the directory did not say
}

// Managed reports whether appreg created the app.
func (a App) Managed() bool { return slices.Contains(a.Tags, TagManaged) }

// ClientName is the clientName recorded in the app's tags, or "".
func (a App) ClientName() string {
	for _, t := range a.Tags {
		if name, ok := strings.CutPrefix(t, TagClientPrefix); ok {
			return name
		}
	}
	return ""
}

// Password finds a password credential by keyId.
func (a App) Password(keyID string) (Password, bool) {
	for _, p := range a.Passwords {
		if strings.EqualFold(p.KeyID, keyID) {
			return p, true
		}
	}
	return Password{}, false
}

// Password is a password credential's metadata. Graph never returns the secret text after
// addPassword, and neither does this type.
type Password struct {
	KeyID       string
	DisplayName string
	Hint        string
	Start       time.Time
	End         time.Time
}

// Live reports whether the password authenticates at t.
func (p Password) Live(t time.Time) bool { return !t.Before(p.Start) && t.Before(p.End) }

// matches reports whether the app already is what spec asks for, so no write is needed.
func (a App) matches(spec AppSpec) bool {
	return a.UniqueName == spec.UniqueName && a.DisplayName == spec.DisplayName &&
		a.SignInAudience == spec.SignInAudience && a.Notes == spec.Notes &&
		sameSet(a.Tags, spec.Tags) && sameSet(a.RedirectURIs, spec.RedirectURIs)
}

// with is the app after spec was written to it.
func (a App) with(spec AppSpec) App {
	a.DisplayName, a.SignInAudience, a.Notes = spec.DisplayName, spec.SignInAudience, spec.Notes
	a.Tags, a.RedirectURIs = slices.Clone(spec.Tags), slices.Clone(spec.RedirectURIs)
	return a
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// AppSpec is the desired state of an application.
type AppSpec struct {
	UniqueName     string
	DisplayName    string
	SignInAudience string
	Notes          string
	Tags           []string
	RedirectURIs   []string
}

// ServicePrincipal is the tenant-local identity of an application.
type ServicePrincipal struct {
	ObjectID string
	AppID    string
}

// PasswordSpec asks for a new password.
type PasswordSpec struct {
	DisplayName string
	Start       time.Time
	End         time.Time
}

// NewPassword is a password just added, with the only copy of its secret text.
type NewPassword struct {
	Password
	Secret SecretValue
}

// WritePressure is what a Directory may also report: how close Graph has lately said appreg's
// identity is to its write limit, from 0 to 1 (x-ms-throttle-limit-percentage, sent above 0.8; 1
// is throttled).
type WritePressure interface {
	WritePressure() float64
}

// Directory is the part of Microsoft Graph the registrar uses.
type Directory interface {
	// FindApplication returns the app with this uniqueName, or a CodeNotFound error.
	FindApplication(ctx context.Context, uniqueName string) (App, error)
	// CreateApplication creates the app spec describes, and nothing else: if spec.UniqueName is
	// taken (by a live app, or by a soft-deleted one, which keeps it for 30 days) it fails with
	// Reason RejectClientNameReserved and changes nothing. The registrar creates with it, so a
	// replica that does not show an existing app cannot make it take that app over.
	CreateApplication(ctx context.Context, spec AppSpec) (App, error)
	// UpsertApplication creates or updates the app keyed by spec.UniqueName. It returns the app
	// and created=true when it created it; after an update it returns a zero App and false,
	// because Graph answers an update without a body and a read would cost a request.
	UpsertApplication(ctx context.Context, spec AppSpec) (app App, created bool, err error)
	// FindServicePrincipal returns the app's service principal, or a CodeNotFound error.
	FindServicePrincipal(ctx context.Context, appID string) (ServicePrincipal, error)
	// UpsertServicePrincipal creates the app's service principal if it is missing.
	UpsertServicePrincipal(ctx context.Context, appID string) (ServicePrincipal, error)
	AddPassword(ctx context.Context, appObjectID string, spec PasswordSpec) (NewPassword, error)
	RemovePassword(ctx context.Context, appObjectID, keyID string) error
	// DeleteServicePrincipal and DeleteApplication delete (Entra keeps them soft-deleted for
	// 30 days); Purge removes a soft-deleted object for good. Each returns a CodeNotFound error
	// for an object that is already gone.
	DeleteServicePrincipal(ctx context.Context, objectID string) error
	DeleteApplication(ctx context.Context, objectID string) error
	Purge(ctx context.Context, objectID string) error
	// ListManagedApplications calls fn for every app tagged TagManaged, page by page.
	ListManagedApplications(ctx context.Context, fn func(App) error) error
}

// SecretVersion is one Key Vault secret version's metadata. The value is never part of it.
type SecretVersion struct {
	Name      string
	Version   string
	ID        string // https://<vault>/secrets/<name>/<version>
	Enabled   bool
	Created   time.Time
	NotBefore time.Time
	Expires   time.Time
	Tags      map[string]string
}

// KeyID is the Entra password keyId this version holds.
func (v SecretVersion) KeyID() string { return v.Tags[KVTagKeyID] }

// Managed reports whether appreg wrote this version.
func (v SecretVersion) Managed() bool { return v.Tags[KVTagManagedBy] == KVManagedByValue }

// SecretSpec is everything stored beside a secret value.
type SecretSpec struct {
	ContentType string
	NotBefore   time.Time
	Expires     time.Time
	Tags        map[string]string
}

// SecretStore is the part of Key Vault the registrar uses.
type SecretStore interface {
	// Latest returns the current version's metadata, or a CodeNotFound error.
	Latest(ctx context.Context, name string) (SecretVersion, error)
	// Versions returns every version's metadata, in any order.
	Versions(ctx context.Context, name string) ([]SecretVersion, error)
	// Deleted reports whether name is soft-deleted: Key Vault refuses new versions of it until
	// an operator recovers or purges it.
	Deleted(ctx context.Context, name string) (bool, error)
	// Value returns the latest version's value, for proving that the client's secret reads the
	// services it was granted. The caller drops it as soon as it is used.
	Value(ctx context.Context, name string) (SecretValue, SecretVersion, error)
	// Disable disables the latest version: its value stays, recoverable for audit, but no
	// reader gets it.
	Disable(ctx context.Context, name string) error
	// Put stores value as a new version.
	Put(ctx context.Context, name string, value SecretValue, spec SecretSpec) (SecretVersion, error)
	// ListManaged calls fn with the current version's metadata of every secret tagged
	// managed-by=appreg. Key Vault lists secrets without a version, so Version is "" and ID is
	// the versionless secret id; use Latest for the current version's id.
	ListManaged(ctx context.Context, fn func(SecretVersion) error) error
}

// Verifier proves a new secret works by signing in with it, as its client will. A new password can
// take seconds to replicate in Entra; until it does, Authenticates returns a CodeReplicating error.
type Verifier interface {
	Authenticates(ctx context.Context, appID string, secret SecretValue) error
}

// Publisher sends what the registrar tells the world: outcome events, and commands to a client's
// session on the command queue.
type Publisher interface {
	Publish(ctx context.Context, e Event) error
	EnqueueRotation(ctx context.Context, job RotationJob) error
	EnqueueMaintenance(ctx context.Context, job MaintenanceJob) error
	// EnqueueAccessCheck sends a verify-access job, to be delivered at the given time.
	EnqueueAccessCheck(ctx context.Context, job AccessCheckJob, at time.Time) error
}

// DeadLetter is a command Service Bus gave up on, as the dead-letter queue holds it.
type DeadLetter struct {
	MessageID    string
	Subject      string
	SessionID    string
	Body         []byte
	EnqueuedTime time.Time
	Reason       string // DeadLetterReason, e.g. MaxDeliveryCountExceeded
	Description  string
}

// DeadLetters reads the command queue's dead-letter queue without taking anything off it.
type DeadLetters interface {
	PeekDeadLetters(ctx context.Context, fn func(DeadLetter) error) error
}
