// An Application Insights workbook with the figures the alerts watch (outcomes and failure rate,
// Graph latency and throttling, poisoned messages, recipients used per mailbox and day) and a
// request's log lines by tracking id. Its queries read the Log Analytics workspace behind
// Application Insights (tables AppMetrics and AppTraces); they are the ones in telemetry-queries.json.
param logAnalyticsId string
param applicationInsightsName string
param location string
param tags object

var queries = loadJsonContent('telemetry-queries.json')
var workspace = 'microsoft.operationalinsights/workspaces'

var workbookContent = {
  version: 'Notebook/1.0'
  items: [
    {
      type: 1
      name: 'intro'
      content: {
        json: '## Meeting cancel service\nOpenTelemetry metrics of the app (AppMetrics) and its log lines (AppTraces). Alerts: a poisoned message, the failure rate over 15 minutes, Graph throttling in 3 consecutive 5-minute windows.'
      }
    }
    {
      type: 9
      name: 'parameters'
      content: {
        version: 'KqlParameterItem/1.0'
        parameters: [
          {
            id: 'a1b2c3d4-0000-4000-8000-000000000001'
            version: 'KqlParameterItem/1.0'
            name: 'TimeRange'
            label: 'Time range'
            type: 4
            isRequired: true
            value: {
              durationMs: 86400000
            }
            typeSettings: {
              selectableValues: [
                { durationMs: 3600000 }
                { durationMs: 14400000 }
                { durationMs: 86400000 }
                { durationMs: 604800000 }
              ]
            }
          }
          {
            id: 'a1b2c3d4-0000-4000-8000-000000000002'
            version: 'KqlParameterItem/1.0'
            name: 'RequestId'
            label: 'Tracking id'
            type: 1
          }
        ]
      }
    }
    {
      type: 3
      name: 'outcomes'
      content: {
        version: 'KqlItem/1.0'
        title: 'Final outcomes by status (meeting_cancel.outcomes)'
        query: queries.outcomesByStatus
        queryType: 0
        resourceType: workspace
        timeContextFromParameter: 'TimeRange'
        visualization: 'timechart'
      }
    }
    {
      type: 3
      name: 'failure-rate'
      content: {
        version: 'KqlItem/1.0'
        title: 'Failure rate of final outcomes, % per 15 minutes'
        query: queries.failureRateOverTime
        queryType: 0
        resourceType: workspace
        timeContextFromParameter: 'TimeRange'
        visualization: 'linechart'
      }
    }
    {
      type: 3
      name: 'failures-by-code'
      content: {
        version: 'KqlItem/1.0'
        title: 'Failures by code'
        query: queries.failuresByCode
        queryType: 0
        resourceType: workspace
        timeContextFromParameter: 'TimeRange'
        visualization: 'table'
      }
    }
    {
      type: 3
      name: 'graph-latency'
      content: {
        version: 'KqlItem/1.0'
        title: 'Microsoft Graph calls and latency, ms (meeting_cancel.graph.duration)'
        query: queries.graphLatency
        queryType: 0
        resourceType: workspace
        timeContextFromParameter: 'TimeRange'
        visualization: 'table'
      }
    }
    {
      type: 3
      name: 'throttled'
      content: {
        version: 'KqlItem/1.0'
        title: 'Throttled Graph answers per 5 minutes (meeting_cancel.graph.throttled)'
        query: queries.throttledByWindow
        queryType: 0
        resourceType: workspace
        timeContextFromParameter: 'TimeRange'
        visualization: 'barchart'
      }
    }
    {
      type: 3
      name: 'throttled-by-mailbox'
      content: {
        version: 'KqlItem/1.0'
        title: 'Throttled answers by mailbox (hash)'
        query: queries.throttledByMailbox
        queryType: 0
        resourceType: workspace
        timeContextFromParameter: 'TimeRange'
        visualization: 'table'
      }
    }
    {
      type: 3
      name: 'poisoned'
      content: {
        version: 'KqlItem/1.0'
        title: 'Messages moved to the poison queue, by reason (meeting_cancel.messages.poisoned)'
        query: queries.poisonedByReason
        queryType: 0
        resourceType: workspace
        timeContextFromParameter: 'TimeRange'
        visualization: 'table'
      }
    }
    {
      type: 3
      name: 'poisonDepth'
      content: {
        version: 'KqlItem/1.0'
        title: 'Messages waiting in the poison queue, however they got there (meeting_cancel.poison.depth, read each minute)'
        query: queries.poisonDepth
        queryType: 0
        resourceType: workspace
        timeContextFromParameter: 'TimeRange'
        visualization: 'linechart'
      }
    }
    {
      type: 3
      name: 'recipients'
      content: {
        version: 'KqlItem/1.0'
        title: 'Recipients used per mailbox and day, against Exchange Online\'s 10,000 (meeting_cancel.recipients.used)'
        query: queries.recipientsByMailboxAndDay
        queryType: 0
        resourceType: workspace
        timeContextFromParameter: 'TimeRange'
        visualization: 'table'
      }
    }
    {
      type: 3
      name: 'request-log'
      conditionalVisibility: {
        parameterName: 'RequestId'
        comparison: 'isNotEqualTo'
        value: ''
      }
      content: {
        version: 'KqlItem/1.0'
        title: 'Log lines of request {RequestId}'
        query: queries.requestLog
        queryType: 0
        resourceType: workspace
        timeContextFromParameter: 'TimeRange'
        visualization: 'table'
      }
    }
  ]
  fallbackResourceIds: [
    logAnalyticsId
  ]
}

resource dashboard 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(logAnalyticsId, 'meeting-cancel-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Meeting cancel: operations (${applicationInsightsName})'
    category: 'workbook'
    sourceId: toLower(logAnalyticsId)
    serializedData: string(workbookContent)
  }
}

output workbookId string = dashboard.id
