"""The alerts and the workbook read exactly the telemetry the app emits (issue 17).

The app exports OpenTelemetry metrics with azure-monitor-opentelemetry to the workspace-based
Application Insights; they land in the Log Analytics table AppMetrics (Name, Sum, ItemCount, Max,
Properties) and log lines in AppTraces. The names and attributes below are the contract with the
code that emits them; a rename on either side must fail here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

from tests.unit.bicep_types import evaluate

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "infra" / "app"
QUERIES: dict[str, str] = {
    key: query for key, query in json.loads((APP / "telemetry-queries.json").read_text()).items() if key[0] != "_"
}

# metric name -> the attributes the app puts on it
METRICS = {
    "meeting_cancel.outcomes": {"status", "code"},
    "meeting_cancel.graph.duration": {"operation", "status"},
    "meeting_cancel.graph.throttled": {"mailbox_hash"},
    "meeting_cancel.messages.poisoned": {"reason"},
    "meeting_cancel.poison.depth": set(),
    "meeting_cancel.recipients.used": {"mailbox_hash"},
}
FINAL_STATUSES = {"cancelled", "failed", "aborted"}


def parse(name: str) -> dict[str, Any]:
    return dict(BicepParser().parse(file_path=APP / name))


def query_name(expression: Any) -> str:
    """The key of telemetry-queries.json that a Bicep expression reads (`queries.<name>`)."""
    if isinstance(expression, dict) and "function" in expression:  # replace(queries.x, ...)
        return query_name(next(iter(expression["function"]["parameters"].values())))
    accessor = expression["operator"]
    assert accessor["type"] == "property_accessor"
    assert accessor["operands"]["operand_1"] == "queries"
    return str(accessor["operands"]["operand_2"])


def body(resource: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = resource["config"]
    return dict(config.get("config", config)) if "condition" in config else config


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_query_reads_only_metrics_and_attributes_the_app_emits(name: str) -> None:
    query = QUERIES[name]
    if query.startswith("AppTraces"):
        assert 'Message contains "request {RequestId}"' in query  # each log line says "request <id>"
        return
    assert query.startswith("AppMetrics\n")
    used = set(re.findall(r'Name == "([^"]+)"', query))
    assert used
    assert used <= set(METRICS), f"{name} reads metrics the app does not emit: {used - set(METRICS)}"
    attributes = set(re.findall(r'Properties\["([^"]+)"\]', query))
    emitted = set().union(*(METRICS[metric] for metric in used))
    assert attributes <= emitted, f"{name} reads {attributes - emitted}"
    compared = re.findall(r'status"?\]?\)? == "([^"]+)"', query)
    for listed in re.findall(r"status in \(([^)]*)\)", query):
        compared += re.findall(r'"([^"]+)"', listed)
    assert set(compared) <= FINAL_STATUSES, f"{name} compares status with {set(compared) - FINAL_STATUSES}"


def test_every_metric_the_app_emits_is_shown_in_the_workbook() -> None:
    workbook = parse("dashboard.bicep")["variables"]["workbookContent"]["value"]
    shown = [item["content"]["query"] for item in workbook["items"] if item["type"] == 3]
    names = {query_name(q) for q in shown}
    assert names <= set(QUERIES)
    texts = "\n".join(QUERIES[n] for n in names)
    for metric in METRICS:
        assert f'Name == "{metric}"' in texts, f"the workbook does not show {metric}"
    assert "requestLog" in names
    for item in workbook["items"]:
        if item["type"] == 3:
            assert item["content"]["resourceType"] == "workspace"  # the variable naming the workspace type
            assert item["content"]["timeContextFromParameter"] == "TimeRange"
    assert workbook["fallbackResourceIds"] == ["logAnalyticsId"]
    resource = parse("dashboard.bicep")["resources"]["dashboard"]["config"]
    assert resource["properties"]["serializedData"]["function"]["type"] == "string"


def alert_rules() -> dict[str, dict[str, Any]]:
    resources = parse("alerts.bicep")["resources"]
    return {name: body(r) for name, r in resources.items() if r["type"] == "Microsoft.Insights/scheduledQueryRules"}


def criterion(rule: dict[str, Any]) -> dict[str, Any]:
    (only,) = rule["properties"]["criteria"]["allOf"]
    return dict(only)


def query_of(rule: dict[str, Any]) -> str:
    return QUERIES[query_name(criterion(rule)["query"])]


def test_a_poisoned_message_alerts_within_five_minutes() -> None:
    rule = alert_rules()["poisoned"]
    assert (rule["properties"]["windowSize"], rule["properties"]["evaluationFrequency"]) == ("PT5M", "PT5M")
    # the worker's own moves, and the depth the sweep reads each minute: also what the host moved
    query = query_of(rule)
    assert '(Name == "meeting_cancel.messages.poisoned" or Name == "meeting_cancel.poison.depth") and Sum > 0' in query
    found = criterion(rule)
    assert (found["timeAggregation"], found["operator"], found["threshold"]) == ("Count", "GreaterThan", 0)


def test_the_failure_rate_alert_compares_failed_with_all_final_outcomes_over_15_minutes() -> None:
    rule = alert_rules()["failureRate"]
    assert rule["properties"]["windowSize"] == "PT15M"
    query = query_of(rule)
    assert 'status in ("cancelled", "failed", "aborted")' in query
    assert 'failed = sumif(Sum, status == "failed")' in query
    assert "100.0 * failed / final" in query
    assert query.endswith("| where failureRatePercent > {failureRatePercent}")
    replaced = criterion(rule)["query"]["function"]
    assert replaced["type"] == "replace"
    arguments = list(replaced["parameters"].values())
    assert arguments[1] == "{failureRatePercent}"  # the placeholder becomes the parameter's value
    assert arguments[2] == {"function": {"type": "string", "parameters": {"value_to_convert": "failureRatePercent"}}}
    assert parse("alerts.bicep")["parameters"]["failureRatePercent"]["default"] == 10


def test_throttling_alerts_only_when_it_lasts_three_consecutive_five_minute_windows() -> None:
    rule = alert_rules()["sustainedThrottling"]
    assert rule["properties"]["windowSize"] == "PT5M"
    assert criterion(rule)["failingPeriods"] == {"numberOfEvaluationPeriods": 3, "minFailingPeriodsToAlert": 3}
    assert 'Name == "meeting_cancel.graph.throttled" and Sum > 0' in query_of(rule)


def test_every_alert_goes_to_the_action_group_and_skips_validation_of_a_new_workspace() -> None:
    rules = alert_rules()
    assert set(rules) == {"poisoned", "failureRate", "sustainedThrottling"}
    for rule in rules.values():
        properties = rule["properties"]
        assert properties["scopes"] == ["logAnalyticsId"]
        assert json.dumps(properties["actions"]["actionGroups"]) == json.dumps(
            [{"operator": {"type": "property_accessor", "operands": {"operand_1": "operators", "operand_2": "id"}}}]
        )
        assert properties["skipQueryValidation"] is True  # AppMetrics exists only after the first metric
    group = parse("alerts.bicep")["resources"]["operators"]["config"]["properties"]
    assert group["emailReceivers"][0]["emailAddress"] == "emailAddress"


@pytest.mark.parametrize(("address", "deployed"), [("", False), ("ops@contoso.com", True)])
def test_the_alerts_exist_only_with_an_email_address(address: str, deployed: bool) -> None:
    main: dict[str, Any] = dict(BicepParser().parse(file_path=ROOT / "infra" / "main.bicep"))
    condition = main["modules"]["alerts"]["config"]["condition"]
    assert evaluate(condition, {"alertEmailAddress": address}) is deployed
    assert main["parameters"]["alertEmailAddress"]["default"] == ""
    assert main["parameters"]["alertFailureRatePercent"]["default"] == 10
    assert "condition" not in main["modules"]["dashboard"]["config"]


def test_the_identity_may_publish_telemetry_to_application_insights() -> None:
    rbac = parse("rbac.bicep")
    assignment = rbac["resources"]["metricsPublisher"]["config"]
    assert assignment["scope"] == "applicationInsights"
    assert rbac["variables"]["roles"]["value"]["monitoringMetricsPublisher"] == "3913510d-42f4-4e42-8a64-420c390055eb"
