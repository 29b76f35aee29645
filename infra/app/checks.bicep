// Checks on the deployment's parameters that stop it with a message a person can act on. fail() is
// evaluated by Azure Resource Manager when the deployment is validated (Bicep docs, "Flow control
// functions"; Bicep 0.33 or later, and azd 1.23.4 brings 0.39). This file declares no resource:
// checkov's Bicep parser predates fail(), so test_infra.py leaves this one file out of its scan.
param callerAuth string
param apiClientId string

output apiClientId string = ((callerAuth == 'entra') && empty(apiClientId)) ? fail('CALLER_AUTH=entra needs API_CLIENT_ID, the client id of the Entra app registration that callers get tokens for: azd env set API_CLIENT_ID <client id> (README, "Who may call").') : apiClientId
