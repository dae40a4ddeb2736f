// Package armemu emulates the slice of Azure Resource Manager that appreg and its operators use:
// role assignments (PUT, GET, DELETE {scope}/providers/Microsoft.Authorization/roleAssignments/
// {name}, and listing at a scope with $filter=principalId eq '…', assignedTo('…') and atScope()),
// the built-in role definitions appreg's deployment names (GET by id, list with $filter=roleName
// eq '…'), and GET /subscriptions, /subscriptions/{id} and /tenants, which the Azure CLI needs to
// sign in against a custom cloud, and the anonymous GET /metadata/endpoints (api-version
// 2015-01-01's shape) that `az cloud register --endpoint-resource-manager` reads. The unmodified armauthorization/v2 client (api-version
// 2022-04-01) talks to it over HTTPS with the shared test CA; tokens are checked for signature,
// lifetime, tenant and an ARM audience (https://management.azure.com,
// https://management.core.windows.net, with or without the slash, or the Azure Service
// Management app id).
//
// Authorization is Azure RBAC: the caller's assignments at the scope or above it must grant the
// action (roleAssignments/write, /delete, /read), and an ABAC condition on such an assignment
// (conditionVersion 2.0: ActionMatches, @Request[…] and @Resource[…] with the String and Guid
// equality operators and the ForAnyOf/ForAllOf quantifiers) must hold for the request; write is
// judged on the request's attributes, delete on the existing assignment's. Errors are ARM's
// {"error":{"code","message"}} with the codes clients match: AuthorizationFailed (403, no
// permission or an unfulfilled condition, indistinguishable as in Azure), RoleAssignmentExists
// (409, the same scope, principal and role under another name), RoleAssignmentUpdateNotPermitted
// (400, an existing name with another principal, role or scope), PrincipalNotFound (400,
// principalType missing and the principal unknown to ARM's view of the directory, which lags
// Entra by Options.PrincipalLag; with principalType set the lookup is skipped, as Microsoft
// advises for new principals), RoleDefinitionDoesNotExist, InvalidRoleAssignmentId,
// RoleAssignmentNotFound, RoleAssignmentLimitExceeded (4,000 per subscription),
// MissingApiVersionParameter, and the 401 codes AuthenticationFailed,
// InvalidAuthenticationToken, InvalidAuthenticationTokenAudience,
// InvalidAuthenticationTokenTenant and ExpiredAuthenticationToken.
//
// Data planes (the FHIR, Key Vault and Service Bus emulators) ask Authorized whether a principal
// held a data action at a scope as of some time: their own clock less their propagation delay,
// so a grant and a removal reach each data plane late, as in Azure. Seed creates assignments the
// way an administrator did before the tests: unchecked, in force for every data plane at once,
// and kept by Reset. The test controls are the shared ones of package emu under /_emu/arm/
// (faults per Op constant; a PrincipalNotFound fault gets ARM's real message), plus POST
// /_emu/arm/assignments (seed), POST /_emu/arm/resources (make a resource exist) and GET/PUT
// /_emu/arm/principal-lag ({"lagMs","withPrincipalType"}: the latter makes even requests with
// principalType wait the lag out, which Azure does not do but a test of appreg's retry needs).
//
// Where it differs from Azure: one tenant and one subscription; resources exist only when
// registered (AddResource), and a resource group exists while it holds one; no resource
// providers beyond Microsoft.Authorization's assignments and definitions, no custom roles, deny
// assignments, PIM, classic administrators or management groups; the role definitions carry the
// actions that matter here and the FHIR roles' data actions as documented (descriptions are
// abbreviated); control-plane RBAC takes effect at once, only data planes see propagation;
// conditions are not evaluated on data-plane checks (an assignment with a condition grants no
// data action); listings come in one page; the name is unique per emulator, not across Azure; a
// PUT of an existing assignment may change its description and condition and answers 201;
// messages marked as ARM's in the reference are ARM's, others (bad bodies, unknown filters,
// unknown scopes: 404 ResourceNotFound) are the emulator's own wording.
package armemu
