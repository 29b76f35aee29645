#!/usr/bin/env bash
# Grants the managed identity the Microsoft Graph application permission Calendars.ReadWrite, and
# with CALLER_AUTH=entra also User.Read.All, which resolves an organizer's UPN to the object id that
# signed-in callers are matched on (Graph's "Get user" reference lists User.Read.All as the least
# privileged application permission).
# Run by the azd postprovision hook (GRANT_GRAPH_PERMISSION=true) or by an administrator who may
# assign app roles (Privileged Role Administrator, or AppRoleAssignment.ReadWrite.All), signed in
# with `az login`.
#   usage: grant-graph-permission.sh <managed identity principal (object) id>
# `azd env get-value MANAGED_IDENTITY_PRINCIPAL_ID` prints the id after `azd provision`.
#
# A new identity's service principal takes minutes to replicate in Entra ID; until then Graph
# answers 404 or 400 "Not a valid reference update" (microsoftgraph/msgraph-bicep-types#193). So
# the grant is retried a bounded number of times, and it is idempotent: an existing assignment is
# left alone. A refusal for lack of rights stops at once.
# Environment: GRAPH_BASE_URL (default https://graph.microsoft.com/v1.0; the deployment's output
# for national clouds), GRANT_ATTEMPTS (default 20), GRANT_RETRY_SECONDS (default 30).
set -euo pipefail
principal_id=${1:?usage: $0 <managed identity principal id>}
graph_base=${GRAPH_BASE_URL:-https://graph.microsoft.com/v1.0}
graph_base=${graph_base%/}
graph_root=${graph_base%/v1.0}
attempts=${GRANT_ATTEMPTS:-20}
delay=${GRANT_RETRY_SECONDS:-30}
graph_app_id=00000003-0000-0000-c000-000000000000
roles="Calendars.ReadWrite=ef54d2bf-783f-4e0f-bca1-3210c0444d99"
if [ "${CALLER_AUTH:-functionKey}" = entra ]; then
  roles="$roles User.Read.All=df021288-bdef-4463-88db-98f22de89214"
fi

if ! command -v az >/dev/null 2>&1; then
  echo "grant-graph-permission: needs the Azure CLI (az), signed in with 'az login' as an account that may assign app roles." >&2
  exit 1
fi

graph() { az rest --resource "$graph_root" --output tsv "$@"; }

# Each step returns on failure itself: errexit does not apply inside a function whose status is tested.
try_grant() {
  local graph_sp existing entry name role_id
  graph_sp=$(graph --method GET --uri "$graph_base/servicePrincipals(appId='$graph_app_id')?\$select=id" --query id) || return 1
  if [ -z "$graph_sp" ]; then
    echo "Graph answered without its service principal." >&2
    return 1
  fi
  for entry in $roles; do
    name=${entry%%=*}
    role_id=${entry#*=}
    existing=$(graph --method GET --uri "$graph_base/servicePrincipals/$principal_id/appRoleAssignments" \
      --query "length(value[?appRoleId=='$role_id' && resourceId=='$graph_sp'])") || return 1
    if [ -z "$existing" ]; then
      echo "Graph answered without the assignments." >&2
      return 1
    fi
    if [ "$existing" != "0" ]; then
      echo "$name (application) is already granted to $principal_id."
      continue
    fi
    graph --method POST --uri "$graph_base/servicePrincipals/$principal_id/appRoleAssignments" \
      --headers "Content-Type=application/json" \
      --body "{\"principalId\": \"$principal_id\", \"resourceId\": \"$graph_sp\", \"appRoleId\": \"$role_id\"}" >/dev/null || return 1
    echo "Granted $name (application) to $principal_id."
  done
}

for attempt in $(seq 1 "$attempts"); do
  if output=$(try_grant 2>&1); then
    echo "$output"
    exit 0
  fi
  case "$output" in
    *Authorization_RequestDenied*|*"Insufficient privileges"*|*Forbidden*)
      echo "$output" >&2
      echo "grant-graph-permission: the signed-in account may not assign app roles. An administrator runs this script (README, \"Grant the Graph permission\")." >&2
      exit 1
      ;;
  esac
  if [ "$attempt" -lt "$attempts" ]; then
    echo "grant-graph-permission: attempt $attempt of $attempts failed (the identity may not have replicated in Entra ID yet); retrying in ${delay}s." >&2
    echo "$output" | tail -n 2 >&2
    sleep "$delay"
  else
    echo "$output" >&2
  fi
done
echo "grant-graph-permission: gave up after $attempts attempts. Run it again later: $0 $principal_id" >&2
exit 1
