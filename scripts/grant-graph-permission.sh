#!/usr/bin/env bash
# Grants appreg's managed identity the Microsoft Graph application permission
# Application.ReadWrite.OwnedBy: the script twin of infra/graph/main.bicep, for administrators who
# would rather not deploy Bicep. Safe to run again: it looks for the assignment first.
set -euo pipefail

# Microsoft Graph's application id, the same in every tenant.
GRAPH_APP_ID=00000003-0000-0000-c000-000000000000 # Microsoft Graph (application id)
# Application.ReadWrite.OwnedBy, from https://learn.microsoft.com/graph/permissions-reference#applicationreadwriteownedby
OWNED_BY=18a4783c-866b-4cc7-a460-3d5e5662c884 # Application.ReadWrite.OwnedBy (Graph app role)
GRAPH_URL=${GRAPH_URL:-https://graph.microsoft.com}

usage() {
	cat <<EOF
Usage: $0 [--principal-id ID] [--check]

Grants appreg's managed identity the Microsoft Graph application permission
Application.ReadWrite.OwnedBy (an admin consent), unless it already holds it.

Run it as a Privileged Role Administrator (or Global Administrator), signed in with
'az login', BEFORE the app's code first starts: a managed identity that asks for a Graph token
before the grant keeps a token without the permission for up to 24 hours.

Options:
  --principal-id ID  object (principal) id of appreg's managed identity; default
                     \$APPREG_IDENTITY_PRINCIPAL_ID, else 'azd env get-value APPREG_IDENTITY_PRINCIPAL_ID'
  --check            only report whether the grant exists; changes nothing (any signed-in
                     member of the tenant can run this)
  -h, --help         show this help

Environment:
  GRAPH_URL          Microsoft Graph endpoint (default https://graph.microsoft.com)

Exit status: 0 granted (now or before), 1 error, 2 bad usage, 3 --check found no grant.
EOF
}

die() {
	echo "grant-graph-permission: $*" >&2
	exit 1
}

principal=${APPREG_IDENTITY_PRINCIPAL_ID:-}
check_only=false
while [ $# -gt 0 ]; do
	case "$1" in
	--principal-id)
		[ $# -ge 2 ] || { usage >&2; exit 2; }
		principal=$2
		shift 2
		;;
	--principal-id=*)
		principal=${1#*=}
		shift
		;;
	--check)
		check_only=true
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "grant-graph-permission: unknown argument: $1" >&2
		usage >&2
		exit 2
		;;
	esac
done

command -v az >/dev/null 2>&1 || die "the Azure CLI (az) is required"
if [ -z "$principal" ] && command -v azd >/dev/null 2>&1; then
	principal=$(azd env get-value APPREG_IDENTITY_PRINCIPAL_ID 2>/dev/null || true)
fi
[ -n "$principal" ] || die "no principal id: pass --principal-id, or run 'azd provision' first so APPREG_IDENTITY_PRINCIPAL_ID is set"
case "$principal" in
*[!0-9a-fA-F-]* | "") die "--principal-id must be an object id (a GUID), got '$principal'" ;;
esac

# Grant to exactly the identity meant: a managed identity, named so a person can confirm it.
sp_url="$GRAPH_URL/v1.0/servicePrincipals/$principal?\$select=displayName,servicePrincipalType"
sp_type=$(az rest --method GET --url "$sp_url" --query servicePrincipalType -o tsv) ||
	die "cannot read service principal $principal (is it the identity's principal id, and are you signed in to its tenant?)"
sp_name=$(az rest --method GET --url "$sp_url" --query displayName -o tsv) || die "cannot read service principal $principal"
[ "$sp_type" = "ManagedIdentity" ] || die "$principal is '$sp_name' of type '$sp_type', not a managed identity; refusing"

graph_sp=$(az ad sp show --id "$GRAPH_APP_ID" --query id -o tsv) || die "cannot find Microsoft Graph's service principal in this tenant"

existing=$(az rest --method GET --url "$GRAPH_URL/v1.0/servicePrincipals/$principal/appRoleAssignments" \
	--query "value[?appRoleId=='$OWNED_BY' && resourceId=='$graph_sp'].id | [0]" -o tsv) ||
	die "cannot list the app role assignments of $principal"

if [ -n "$existing" ]; then
	echo "$sp_name ($principal) already holds Microsoft Graph Application.ReadWrite.OwnedBy (assignment $existing)"
	exit 0
fi
if $check_only; then
	echo "$sp_name ($principal) does NOT hold Microsoft Graph Application.ReadWrite.OwnedBy" >&2
	exit 3
fi

body=$(printf '{"principalId":"%s","resourceId":"%s","appRoleId":"%s"}' "$principal" "$graph_sp" "$OWNED_BY")
created=$(az rest --method POST --url "$GRAPH_URL/v1.0/servicePrincipals/$principal/appRoleAssignments" \
	--headers Content-Type=application/json --body "$body" --query id -o tsv) ||
	die "the grant failed: it needs the Privileged Role Administrator (or Global Administrator) role"
echo "granted Microsoft Graph Application.ReadWrite.OwnedBy to $sp_name ($principal) (assignment $created)"
echo "If the app has already started, restart it so it asks for a new token: az functionapp restart -g <rg> -n <app>"
