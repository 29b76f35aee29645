<#
.SYNOPSIS
Grants the managed identity the Microsoft Graph application permission Calendars.ReadWrite.

.DESCRIPTION
Run by an administrator who may assign app roles. Uses the Microsoft Graph PowerShell SDK.
After `azd up`, `azd env get-values` prints MANAGED_IDENTITY_PRINCIPAL_ID.

.EXAMPLE
./Grant-GraphPermission.ps1 -PrincipalId 11111111-2222-3333-4444-555555555555
#>
param(
    [Parameter(Mandatory)] [string] $PrincipalId
)
$ErrorActionPreference = 'Stop'
$graphAppId = '00000003-0000-0000-c000-000000000000'
$calendarsReadWrite = 'ef54d2bf-783f-4e0f-bca1-3210c0444d99'

Connect-MgGraph -Scopes 'AppRoleAssignment.ReadWrite.All', 'Application.Read.All' -NoWelcome
$graph = Get-MgServicePrincipal -Filter "appId eq '$graphAppId'"
New-MgServicePrincipalAppRoleAssignment -ServicePrincipalId $PrincipalId `
    -PrincipalId $PrincipalId -ResourceId $graph.Id -AppRoleId $calendarsReadWrite | Out-Null
Write-Host "Granted Calendars.ReadWrite (application) to $PrincipalId."
