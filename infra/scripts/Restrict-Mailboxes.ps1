<#
.SYNOPSIS
Narrows the service's calendar access to some mailboxes with Exchange Online RBAC for Applications.

.DESCRIPTION
Assigns the Exchange role "Application Calendars.ReadWrite" to the managed identity, scoped to the
mailboxes a management scope selects (by default: members of a mail-enabled group). Afterwards the
tenant-wide Calendars.ReadWrite grant in Microsoft Entra ID MUST be removed: Entra grants and
Exchange RBAC grants add up, so while the Entra grant exists the identity still reaches every mailbox.

Run in Exchange Online PowerShell (Connect-ExchangeOnline) as an Exchange administrator.

.EXAMPLE
./Restrict-Mailboxes.ps1 -AppId <managed identity client id> -ObjectId <its enterprise application object id> `
    -ScopeName "Meeting cancel mailboxes" -RecipientFilter "MemberOfGroup -eq 'CN=Cancellable,OU=…'" `
    -TestMailbox adele.vance@contoso.com
#>
param(
    [Parameter(Mandatory)] [string] $AppId,
    [Parameter(Mandatory)] [string] $ObjectId,
    [string] $DisplayName = 'meeting-cancel',
    [string] $ScopeName = 'Meeting cancel mailboxes',
    [Parameter(Mandatory)] [string] $RecipientFilter,
    [string] $TestMailbox
)
$ErrorActionPreference = 'Stop'

if (-not (Get-ServicePrincipal -Identity $AppId -ErrorAction SilentlyContinue)) {
    New-ServicePrincipal -AppId $AppId -ObjectId $ObjectId -DisplayName $DisplayName | Out-Null
}
if (-not (Get-ManagementScope -Identity $ScopeName -ErrorAction SilentlyContinue)) {
    New-ManagementScope -Name $ScopeName -RecipientRestrictionFilter $RecipientFilter | Out-Null
}
New-ManagementRoleAssignment -App $AppId -Role 'Application Calendars.ReadWrite' `
    -CustomResourceScope $ScopeName -Name "$DisplayName calendars" | Out-Null

if ($TestMailbox) {
    Test-ServicePrincipalAuthorization -Identity $AppId -Resource $TestMailbox |
        Format-Table RoleName, GrantedPermissions, AllowedResourceScope, ScopeName, InScope
}
Write-Warning ('Now remove the tenant-wide Calendars.ReadWrite application permission from the identity in ' +
    'Microsoft Entra ID (Enterprise applications > the identity > Permissions), or it still reaches every mailbox.')
