package keyvaultemu

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"appreg/emulator/internal/token"
)

// Authorizer is Azure RBAC as the vault consults it: whether a principal held a data action at
// a scope as of a time. The Resource Manager emulator implements it.
type Authorizer interface {
	Authorized(principalID, scope, dataAction string, asOf time.Time) bool
}

// DefaultPropagationDelay is how late a role assignment (or its removal) reaches the vault when
// Options.PropagationDelay is zero. Azure takes up to 10 minutes; seconds keep tests quick.
const DefaultPropagationDelay = 5 * time.Second

const secretsActions = "Microsoft.KeyVault/vaults/secrets/"

// dataActions is the data action each operation needs, as Key Vault's RBAC names them.
var dataActions = map[string]string{
	"setSecret":            secretsActions + "setSecret/action",
	"getSecret":            secretsActions + "getSecret/action",
	"updateSecret":         secretsActions + "update/action",
	"deleteSecret":         secretsActions + "delete",
	"getSecrets":           secretsActions + "readMetadata/action",
	"getSecretVersions":    secretsActions + "readMetadata/action",
	"getDeletedSecrets":    secretsActions + "readMetadata/action",
	"getDeletedSecret":     secretsActions + "readMetadata/action",
	"purgeDeletedSecret":   secretsActions + "purge/action",
	"recoverDeletedSecret": secretsActions + "recover/action",
	"backupSecret":         secretsActions + "backup/action",
	"restoreSecret":        secretsActions + "restore/action",
}

// authorize applies Azure RBAC to an authenticated call: the caller's roles, as they stood one
// propagation delay ago, must grant the operation's data action on the secret (or, for lists and
// restore, on the vault). Without an Authorizer every caller of the tenant may do everything.
func (s *Server) authorize(r *http.Request, c token.Claims, op string) *apiError {
	if s.authz == nil {
		return nil
	}
	scope := s.resourceID
	if name := r.PathValue("name"); name != "" && op != "restoreSecret" {
		scope += "/secrets/" + name
	}
	action := dataActions[op]
	if s.authz.Authorized(c.ObjectID, scope, action, s.now().Add(-s.propagationDelay())) {
		return nil
	}
	vault := s.resourceID[strings.LastIndex(s.resourceID, "/")+1:]
	return &apiError{status: http.StatusForbidden, code: "Forbidden", inner: "ForbiddenByRbac", message: fmt.Sprintf(
		"Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n"+
			"Caller: appid=%s;oid=%s;iss=%s\r\nAction: '%s'\r\nResource: '%s'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: 'DeniedWithNoValidRBAC' \r\nVault: %s;location=%s\r\n",
		c.AppID, c.ObjectID, c.Issuer, action, strings.ToLower(scope), vault, region)}
}

// SetPropagationDelay sets how late role assignments and their removals take effect here.
func (s *Server) SetPropagationDelay(d time.Duration) { s.delay.Set(d) }

func (s *Server) propagationDelay() time.Duration { return s.delay.Get() }
