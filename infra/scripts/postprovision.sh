#!/bin/sh
# azd postprovision hook (azure.yaml): with GRANT_GRAPH_PERMISSION=true, grants the new identity the
# Graph permission Calendars.ReadWrite once provisioning has created it. azd passes the
# environment's values and the deployment's outputs (MANAGED_IDENTITY_PRINCIPAL_ID, GRAPH_BASE_URL).
set -eu
if [ "${GRANT_GRAPH_PERMISSION:-false}" != "true" ]; then
  echo "GRANT_GRAPH_PERMISSION is not true: an administrator grants Calendars.ReadWrite (README, \"Grant the Graph permission\")."
  exit 0
fi
principal_id=${MANAGED_IDENTITY_PRINCIPAL_ID:?MANAGED_IDENTITY_PRINCIPAL_ID is not set: run azd provision first}
exec bash "$(dirname "$0")/grant-graph-permission.sh" "$principal_id"
