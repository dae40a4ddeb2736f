#!/bin/sh
# azd's predeploy hook (azure.yaml): runs after `azd provision`, before the code is published.
#
# 1. Refuses to publish before the Graph grant exists. Publishing is the app's first start, and a
#    managed identity that asks for a Graph token before Application.ReadWrite.OwnedBy is granted
#    keeps a token without it for up to 24 hours. APPREG_SKIP_GRAPH_CHECK=1 skips the check (for
#    an operator who cannot read the directory, once the grant is known to exist).
# 2. Runs `make package`: dist/ (host.json, one folder per function, a static linux/amd64
#    handler) and bin/appreg-dist.zip, whose entries carry their Unix modes with the handler as
#    -rwxr-xr-x (a handler without its execute bit never starts). The zip is written in Go
#    (azemu stage --zip), so packaging needs nothing beyond make and go.
#    azd's own zip is not used (azure.yaml declares no service): before azd 1.26 it dropped file
#    modes, and this zip is one an operator can inspect and publish again by hand.
set -eu
cd "$(dirname "$0")/.."

env_get() {
	eval "v=\${$1:-}"
	if [ -z "$v" ] && command -v azd >/dev/null 2>&1; then
		v=$(azd env get-value "$1" 2>/dev/null || true)
	fi
	printf '%s' "$v"
}

if [ "${APPREG_SKIP_GRAPH_CHECK:-}" != 1 ]; then
	principal=$(env_get APPREG_IDENTITY_PRINCIPAL_ID)
	rc=0
	scripts/grant-graph-permission.sh --check --principal-id "$principal" || rc=$?
	case $rc in
	0) ;;
	3)
		cat >&2 <<MSG

appreg: not publishing the code yet. Its managed identity ($principal) does not hold the
Microsoft Graph permission Application.ReadWrite.OwnedBy, and the first start would cache a
Graph token without it for up to 24 hours. Ask a Privileged Role Administrator to run ONE of:

  scripts/grant-graph-permission.sh --principal-id $principal
  az deployment group create --resource-group $(env_get AZURE_RESOURCE_GROUP) \\
    --template-file infra/graph/main.bicep --parameters principalId=$principal

then run 'azd deploy'. Everything else is provisioned already (README "Deploying to Azure", step 3).
MSG
		exit 1
		;;
	*)
		echo "appreg: could not check the Graph grant (above). If it is known to exist, run again with APPREG_SKIP_GRAPH_CHECK=1." >&2
		exit 1
		;;
	esac
fi

for tool in make go; do
	command -v "$tool" >/dev/null 2>&1 || { echo "appreg: '$tool' is required to package the app" >&2; exit 1; }
done

make package
