#!/usr/bin/env bash
# Grants the managed identity the Microsoft Graph application permission Calendars.ReadWrite.
# Run by an administrator who may assign app roles (Privileged Role Administrator, or a principal
# holding AppRoleAssignment.ReadWrite.All), signed in with `az login`.
#   usage: grant-graph-permission.sh <managed identity principal (object) id>
# `azd env get-values | grep MANAGED_IDENTITY_PRINCIPAL_ID` prints the id after `azd up`.
set -euo pipefail
principal_id=${1:?usage: $0 <managed identity principal id>}
graph_app_id=00000003-0000-0000-c000-000000000000
calendars_read_write=ef54d2bf-783f-4e0f-bca1-3210c0444d99
graph_root=${GRAPH_ROOT:-https://graph.microsoft.com}

graph_sp=$(az ad sp show --id "$graph_app_id" --query id --output tsv)
az rest --method POST \
  --uri "$graph_root/v1.0/servicePrincipals/$principal_id/appRoleAssignments" \
  --headers "Content-Type=application/json" \
  --body "{\"principalId\": \"$principal_id\", \"resourceId\": \"$graph_sp\", \"appRoleId\": \"$calendars_read_write\"}"
echo "Granted Calendars.ReadWrite (application) to $principal_id."
