<#
.SYNOPSIS
azd postprovision hook on Windows: with GRANT_GRAPH_PERMISSION=true, grants the new identity the
Microsoft Graph application permission Calendars.ReadWrite (and User.Read.All with CALLER_AUTH=entra).

.DESCRIPTION
The same steps as postprovision.sh and grant-graph-permission.sh: idempotent (an existing
assignment is left alone), retried a bounded number of times while Entra ID replicates the new
identity (microsoftgraph/msgraph-bicep-types#193), stopped at once when the signed-in account may
not assign app roles. Needs the Azure CLI signed in with `az login`.
Environment: GRAPH_BASE_URL, GRANT_ATTEMPTS (default 20), GRANT_RETRY_SECONDS (default 30).
#>
$ErrorActionPreference = 'Stop'
if ($env:GRANT_GRAPH_PERMISSION -ne 'true') {
    Write-Host 'GRANT_GRAPH_PERMISSION is not true: an administrator grants Calendars.ReadWrite (README, "Grant the Graph permission").'
    exit 0
}
$principalId = $env:MANAGED_IDENTITY_PRINCIPAL_ID
if (-not $principalId) { throw 'MANAGED_IDENTITY_PRINCIPAL_ID is not set: run azd provision first.' }
if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    throw "The Graph grant needs the Azure CLI (az), signed in with 'az login' as an account that may assign app roles."
}
$graphBase = if ($env:GRAPH_BASE_URL) { $env:GRAPH_BASE_URL.TrimEnd('/') } else { 'https://graph.microsoft.com/v1.0' }
$graphRoot = $graphBase -replace '/v1\.0$', ''
$attempts = if ($env:GRANT_ATTEMPTS) { [int]$env:GRANT_ATTEMPTS } else { 20 }
$delay = if ($env:GRANT_RETRY_SECONDS) { [int]$env:GRANT_RETRY_SECONDS } else { 30 }
$graphAppId = '00000003-0000-0000-c000-000000000000'
$roles = [ordered]@{ 'Calendars.ReadWrite' = 'ef54d2bf-783f-4e0f-bca1-3210c0444d99' }
if ($env:CALLER_AUTH -eq 'entra') { $roles['User.Read.All'] = 'df021288-bdef-4463-88db-98f22de89214' }

function Invoke-Graph([string[]] $Arguments) {
    $output = & az rest --resource $graphRoot --output tsv @Arguments 2>&1
    if ($LASTEXITCODE -ne 0) { throw ($output -join "`n") }
    return ($output -join "`n").Trim()
}

for ($attempt = 1; $attempt -le $attempts; $attempt++) {
    try {
        $graphSp = Invoke-Graph @('--method', 'GET', '--uri', "$graphBase/servicePrincipals(appId='$graphAppId')?`$select=id", '--query', 'id')
        foreach ($role in $roles.GetEnumerator()) {
            $existing = Invoke-Graph @('--method', 'GET', '--uri', "$graphBase/servicePrincipals/$principalId/appRoleAssignments",
                '--query', "length(value[?appRoleId=='$($role.Value)' && resourceId=='$graphSp'])")
            if ($existing -ne '0') {
                Write-Host "$($role.Key) (application) is already granted to $principalId."
                continue
            }
            $body = @{ principalId = $principalId; resourceId = $graphSp; appRoleId = $role.Value } | ConvertTo-Json -Compress
            $bodyFile = New-TemporaryFile
            Set-Content -Path $bodyFile -Value $body -Encoding utf8
            Invoke-Graph @('--method', 'POST', '--uri', "$graphBase/servicePrincipals/$principalId/appRoleAssignments",
                '--headers', 'Content-Type=application/json', '--body', "@$bodyFile") | Out-Null
            Remove-Item $bodyFile
            Write-Host "Granted $($role.Key) (application) to $principalId."
        }
        exit 0
    }
    catch {
        $message = "$_"
        if ($message -match 'Authorization_RequestDenied|Insufficient privileges|Forbidden') {
            throw "The signed-in account may not assign app roles; an administrator grants it (README, ""Grant the Graph permission""). $message"
        }
        if ($attempt -lt $attempts) {
            Write-Warning "Attempt $attempt of $attempts failed (the identity may not have replicated in Entra ID yet); retrying in $delay s. $message"
            Start-Sleep -Seconds $delay
        }
        else {
            throw "Gave up after $attempts attempts; run azd provision again later. $message"
        }
    }
}
