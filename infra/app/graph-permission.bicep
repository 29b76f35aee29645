// Optional: grants the managed identity the Microsoft Graph application permission
// Calendars.ReadWrite. The deployer needs AppRoleAssignment.ReadWrite.All (or a role such as
// Privileged Role Administrator), which is why main.bicep leaves it off by default.
extension microsoftGraphV1

@description('Object (principal) id of the managed identity.')
param principalId string

var microsoftGraphAppId = '00000003-0000-0000-c000-000000000000'
var calendarsReadWriteAppRoleId = 'ef54d2bf-783f-4e0f-bca1-3210c0444d99'

resource microsoftGraph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: microsoftGraphAppId
}

resource calendarsReadWrite 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  appRoleId: calendarsReadWriteAppRoleId
  principalId: principalId
  resourceId: microsoftGraph.id
}
