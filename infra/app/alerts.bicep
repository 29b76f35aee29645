// Alerts on the service's own telemetry, sent to one e-mail address. The app exports OpenTelemetry
// metrics with azure-monitor-opentelemetry to the workspace-based Application Insights, where they
// land in the Log Analytics table AppMetrics (column Name; attributes in Properties; a counter's
// increments in Sum). main.bicep deploys this module only when an address is given.
@description('Where alerts are sent.')
param emailAddress string

@description('Log Analytics workspace behind Application Insights: the alert queries read its AppMetrics table.')
param logAnalyticsId string

@description('Alert when failed final outcomes exceed this share of all final outcomes over 15 minutes.')
@minValue(1)
@maxValue(100)
param failureRatePercent int = 10

param location string
param tags object

var queries = loadJsonContent('telemetry-queries.json')

resource operators 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-meeting-cancel-${uniqueString(logAnalyticsId)}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'mtgcancel'
    enabled: true
    emailReceivers: [
      {
        name: 'operators'
        emailAddress: emailAddress
        useCommonAlertSchema: true
      }
    ]
  }
}

// (a) Any message moved to the poison queue: somebody has to look at it.
resource poisoned 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'meeting-cancel-poisoned-${uniqueString(logAnalyticsId)}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Meeting cancel: a message reached the poison queue'
    description: 'meeting_cancel.messages.poisoned counted at least one message in 5 minutes. Its reason is in the workbook and in AppTraces ("request <id>").'
    severity: 1
    enabled: true
    scopes: [
      logAnalyticsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    // AppMetrics only exists once the app has sent a metric; validation would fail on a new workspace.
    skipQueryValidation: true
    criteria: {
      allOf: [
        {
          query: queries.poisoned
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        operators.id
      ]
    }
  }
}

// (b) Failure rate of final outcomes (cancelled, failed, aborted) over 15 minutes.
resource failureRate 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'meeting-cancel-failure-rate-${uniqueString(logAnalyticsId)}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Meeting cancel: failure rate above ${failureRatePercent}%'
    description: 'Share of meeting_cancel.outcomes with status failed among all final outcomes over 15 minutes. The workbook splits them by code.'
    severity: 2
    enabled: true
    scopes: [
      logAnalyticsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    skipQueryValidation: true
    criteria: {
      allOf: [
        {
          // The query computes the rate over the whole window and returns a row only above it.
          query: replace(queries.failureRate, '{failureRatePercent}', string(failureRatePercent))
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        operators.id
      ]
    }
  }
}

// (c) Graph throttling that lasts: throttled answers in each of 3 consecutive 5-minute windows.
resource sustainedThrottling 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'meeting-cancel-throttled-${uniqueString(logAnalyticsId)}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Meeting cancel: Microsoft Graph throttling for 15 minutes'
    description: 'meeting_cancel.graph.throttled counted throttled answers in 3 consecutive 5-minute windows. The workbook shows which mailboxes (by hash).'
    severity: 2
    enabled: true
    scopes: [
      logAnalyticsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    skipQueryValidation: true
    criteria: {
      allOf: [
        {
          // Each 5-minute period counts rows with throttled answers; all 3 periods must have some.
          query: queries.throttled
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 3
            minFailingPeriodsToAlert: 3
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        operators.id
      ]
    }
  }
}

output actionGroupId string = operators.id
