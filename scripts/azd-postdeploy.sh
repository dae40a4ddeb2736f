#!/bin/sh
# azd's postdeploy hook (azure.yaml): publishes bin/appreg-dist.zip, which the predeploy hook
# built and checked, to the Flex Consumption app. `az functionapp deployment source config-zip`
# recognises a Flex app and posts to its One Deploy endpoint (/api/publish, no remote build),
# which stores the zip in the deployment container and restarts the app on it.
set -eu
cd "$(dirname "$0")/.."

env_get() {
	eval "v=\${$1:-}"
	if [ -z "$v" ] && command -v azd >/dev/null 2>&1; then
		v=$(azd env get-value "$1" 2>/dev/null || true)
	fi
	printf '%s' "$v"
}

app=$(env_get AZURE_FUNCTION_NAME)
rg=$(env_get AZURE_RESOURCE_GROUP)
zip=bin/appreg-dist.zip
if [ -z "$app" ] || [ -z "$rg" ]; then
	echo "appreg: AZURE_FUNCTION_NAME or AZURE_RESOURCE_GROUP is not set; run 'azd provision' first" >&2
	exit 1
fi
[ -f "$zip" ] || { echo "appreg: $zip is missing; the predeploy hook builds it (scripts/azd-predeploy.sh)" >&2; exit 1; }
command -v az >/dev/null 2>&1 || { echo "appreg: the Azure CLI (az) is required to publish" >&2; exit 1; }

echo "appreg: publishing $zip to $app"
az functionapp deployment source config-zip --resource-group "$rg" --name "$app" --src "$zip"

# The host indexes the functions after it restarts on the new package; an empty list a minute
# later means it could not start (see README "Deploying to Azure", step 4).
echo "appreg: functions the host reports (may take a minute to appear):"
az functionapp function list --resource-group "$rg" --name "$app" --query "[].name" -o tsv || true
