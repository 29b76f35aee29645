"""The Power Automate custom connector and the queue contract, checked offline: against Swagger 2.0,
the Power Platform schemas vendored in tests/reference/power-platform, the pydantic models, the
mechanisms Microsoft documents for custom connectors and the string rules of connector certification.

Sources the checks rest on:
- multi-auth and the host from the connection: Microsoft's custom connector docs ("Add multiple
  authentications", policy template "dynamichosturl") and certified connectors in
  microsoft/PowerPlatformConnectors: ``certified-connectors/Unearth Ingest`` (a customer's own
  azurewebsites.net app, host from a connection parameter, tenant set at deployment),
  ``certified-connectors/CognitiveServicesQuestionAnswering`` (the host parameter in every set) and
  ``independent-publisher-connectors/Open Data Network`` (an ``api_key`` set named like its apiKey
  security definition, so only that set sends the key header).
- strings: learn.microsoft.com/connectors/custom-connectors/connector-string-guidance and
  .../certification-submission; English-only characters from certification reviews in
  microsoft/PowerPlatformConnectors (pull requests 705 and 967).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import json5
import jsonschema  # type: ignore[import-untyped]
import pytest
from openapi_spec_validator import validate as validate_openapi
from PIL import Image
from pydantic import BaseModel

from meeting_cancel.models import CancelRequest
from meeting_cancel.status_view import CancellationError, CancellationStatus, GraphCallView, GraphErrorDetail

ROOT = Path(__file__).resolve().parents[2]
CONNECTOR = ROOT / "connector"
REFERENCE = ROOT / "tests" / "reference" / "power-platform"


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((CONNECTOR / name).read_text()))


def reference_schema(name: str) -> dict[str, Any]:
    return dict(json5.loads((REFERENCE / name).read_text()))  # the published schemas carry // comments


SWAGGER = load("apiDefinition.swagger.json")
PROPERTIES = load("apiProperties.json")
OPERATIONS = [(path, method, op) for path, item in SWAGGER["paths"].items() for method, op in item.items()]
PARAMETER_SETS = {s["name"]: s for s in PROPERTIES["properties"]["connectionParameterSets"]["values"]}
POLICIES = PROPERTIES["properties"]["policyTemplateInstances"]
HOST_PARAMETER = "hostName"


def test_swagger_is_valid_swagger_2() -> None:
    assert SWAGGER["swagger"] == "2.0"
    validate_openapi(SWAGGER)


def test_swagger_validates_against_the_power_platform_schema() -> None:
    jsonschema.validate(SWAGGER, reference_schema("apiDefinition.swagger.schema.json"))


def test_api_properties_validate_against_the_power_platform_schema() -> None:
    """The published schema predates connectionParameterSets, which the service accepts: each set's
    parameters are validated as connectionParameters of their own."""
    schema = reference_schema("paconn-apiProperties.schema.json")
    assert list(PARAMETER_SETS) == ["functionKey", "entra"]
    for parameter_set in PARAMETER_SETS.values():
        single = copy.deepcopy(PROPERTIES)
        del single["properties"]["connectionParameterSets"]
        single["properties"]["connectionParameters"] = parameter_set["parameters"]
        jsonschema.validate(single, schema)


def test_every_parameter_of_every_set_is_required() -> None:
    """The multi-auth docs make uiDefinition.constraints.required "true" mandatory for each parameter of a set."""
    for name, parameter_set in PARAMETER_SETS.items():
        for parameter, definition in parameter_set["parameters"].items():
            assert definition["uiDefinition"]["constraints"]["required"] == "true", f"{name}.{parameter}"


def test_settings_validate_against_the_connectors_cli_schema() -> None:
    jsonschema.validate(load("settings.json"), reference_schema("paconn-settings.schema.json"))


def test_icon_is_230_square_on_the_brand_color() -> None:
    color = PROPERTIES["properties"]["iconBrandColor"].lower()
    assert re.fullmatch(r"#[0-9a-f]{6}", color)
    assert color not in ("#007ee5", "#ffffff")
    with Image.open(CONNECTOR / "icon.png") as icon:
        assert icon.size == (230, 230)
        corner = icon.convert("RGB").getpixel((0, 0))
    assert isinstance(corner, tuple)
    assert "#{:02x}{:02x}{:02x}".format(*corner) == color


# --- what a connection sends, as Microsoft documents the mechanisms ----------------------------------

CONNECTION_PARAMETER = re.compile(r"@connectionParameters\('([^']+)'(?:\s*,\s*'([^']*)')?\)")


def evaluate(template: str, values: dict[str, str]) -> str:
    """A policy expression: @connectionParameters('name') or ('name', 'default'), as the policy
    template docs show them (a missing parameter without a default is an error)."""

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in values:
            return values[name]
        if default is None:
            raise KeyError(f"the connection has no parameter {name!r}")
        return default

    return CONNECTION_PARAMETER.sub(value, template)


def applies_to(policy: dict[str, Any], operation_id: str) -> bool:
    scope = policy["parameters"].get("x-ms-apimTemplate-operationName")
    return scope is None or operation_id in scope


def outgoing_request(
    properties: dict[str, Any], swagger: dict[str, Any], set_name: str, values: dict[str, str], operation_id: str
) -> tuple[str, dict[str, str]]:
    """The base URL and the headers a connection of one parameter set sends for one operation:
    - the swagger's host and basePath, unless a dynamichosturl policy replaces both with its template;
    - a setheader policy sets its header to the evaluated value, whatever the connection's set;
    - an apiKey security definition sends the ``api_key`` parameter of a set named like it;
    - an oauthSetting parameter sends its token as a bearer token."""
    parameter_sets = {s["name"]: s for s in properties["properties"]["connectionParameterSets"]["values"]}
    parameters = parameter_sets[set_name]["parameters"]
    assert set(values) <= set(parameters), f"{set(values) - set(parameters)} are not parameters of {set_name}"
    base = f"https://{swagger['host']}{swagger.get('basePath', '')}"
    headers: dict[str, str] = {}
    scheme = swagger.get("securityDefinitions", {}).get(set_name, {})
    if scheme.get("type") == "apiKey" and scheme.get("in") == "header" and "api_key" in values:
        headers[scheme["name"]] = values["api_key"]
    if any(p["type"] == "oauthSetting" for p in parameters.values()):
        headers["Authorization"] = "Bearer <token of the signed-in user>"
    for policy in properties["properties"].get("policyTemplateInstances", []):
        if not applies_to(policy, operation_id):
            continue
        if policy["templateId"].lower() == "dynamichosturl":
            base = evaluate(policy["parameters"]["x-ms-apimTemplateParameter.urlTemplate"], values)
        elif policy["templateId"] == "setheader":
            name = policy["parameters"]["x-ms-apimTemplateParameter.name"]
            headers[name] = evaluate(policy["parameters"]["x-ms-apimTemplateParameter.value"], values)
    return base, headers


HOST = "func-abc123.azurewebsites.net"
FUNCTION_KEY_CONNECTION = {HOST_PARAMETER: HOST, "api_key": "a-function-key"}
ENTRA_CONNECTION = {HOST_PARAMETER: HOST}


@pytest.mark.parametrize("operation_id", [op["operationId"] for _, _, op in OPERATIONS])
def test_every_operation_goes_to_the_host_of_the_connection(operation_id: str) -> None:
    for set_name, values in (("functionKey", FUNCTION_KEY_CONNECTION), ("entra", ENTRA_CONNECTION)):
        base, _ = outgoing_request(PROPERTIES, SWAGGER, set_name, values, operation_id)
        assert base == f"https://{HOST}{SWAGGER['basePath']}", set_name


def test_the_host_is_a_connection_parameter_and_the_swagger_host_is_never_called() -> None:
    """One file for every deployment: the maker names the function app when creating the connection.
    The swagger's host is a reserved name (RFC 2606 .invalid) so a copy that lost the policy fails
    instead of calling someone else's app."""
    for name, parameter_set in PARAMETER_SETS.items():
        parameter = parameter_set["parameters"][HOST_PARAMETER]
        assert parameter["type"] == "string", name
    [policy] = [p for p in POLICIES if p["templateId"] == "dynamichosturl"]
    assert "x-ms-apimTemplate-operationName" not in policy["parameters"]
    template = policy["parameters"]["x-ms-apimTemplateParameter.urlTemplate"]
    assert template == f"https://@connectionParameters('{HOST_PARAMETER}'){SWAGGER['basePath']}"
    assert SWAGGER["host"].endswith(".invalid")


def test_a_function_key_connection_sends_its_key_in_the_header() -> None:
    for _, _, operation in OPERATIONS:
        operation_id = operation["operationId"]
        _, headers = outgoing_request(PROPERTIES, SWAGGER, "functionKey", FUNCTION_KEY_CONNECTION, operation_id)
        assert headers == {"x-functions-key": "a-function-key"}
    assert "code=" not in json.dumps(SWAGGER)


def test_an_entra_connection_sends_no_function_key_header() -> None:
    for _, _, operation in OPERATIONS:
        _, headers = outgoing_request(PROPERTIES, SWAGGER, "entra", ENTRA_CONNECTION, operation["operationId"])
        assert "x-functions-key" not in {h.lower() for h in headers}
        assert headers["Authorization"].startswith("Bearer ")


def test_a_setheader_policy_for_the_key_would_send_entra_connections_an_empty_header() -> None:
    """What the connector did before: a setheader policy runs for every connection, so the Entra set
    sent ``x-functions-key`` with the default ''. The model above catches that; the connector must
    carry the key through the apiKey security definition instead."""
    before = copy.deepcopy(PROPERTIES)
    before["properties"]["policyTemplateInstances"].append(
        {
            "templateId": "setheader",
            "title": "Send the function key",
            "parameters": {
                "x-ms-apimTemplateParameter.name": "x-functions-key",
                "x-ms-apimTemplateParameter.value": "@connectionParameters('api_key','')",
                "x-ms-apimTemplateParameter.existsAction": "override",
                "x-ms-apimTemplate-policySection": "Request",
            },
        }
    )
    _, headers = outgoing_request(before, SWAGGER, "entra", ENTRA_CONNECTION, "CancelMeeting")
    assert headers["x-functions-key"] == ""
    for policy in POLICIES:
        assert "api_key" not in json.dumps(policy)


def test_each_set_is_named_like_its_security_definition() -> None:
    definitions = SWAGGER["securityDefinitions"]
    assert set(definitions) == set(PARAMETER_SETS)
    assert definitions["functionKey"] == {"type": "apiKey", "in": "header", "name": "x-functions-key"}
    assert definitions["entra"]["type"] == "oauth2"
    assert SWAGGER["security"] == [{name: []} for name in PARAMETER_SETS]
    key_holders = [name for name, s in PARAMETER_SETS.items() if "api_key" in s["parameters"]]
    assert key_holders == ["functionKey"]
    assert PARAMETER_SETS["functionKey"]["parameters"]["api_key"]["type"] == "securestring"


PLACEHOLDER = re.compile(r"\[\[[^\]]+\]\]")


def test_the_entra_tenant_is_a_documented_edit_not_common() -> None:
    """``common`` (and ``organizations``) only work with a multi-tenant app registration; the
    service's registration is single-tenant by default and the service accepts its own tenant only."""
    settings = PARAMETER_SETS["entra"]["parameters"]["token"]["oAuthSettings"]
    assert settings["identityProvider"] == "aad"
    tenant = settings["customParameters"]["tenantId"]["value"]
    assert tenant.lower() not in ("common", "organizations", "consumers")
    assert PLACEHOLDER.fullmatch(tenant)
    readme = (CONNECTOR / "README.md").read_text()
    placeholders = set(PLACEHOLDER.findall(json.dumps(PROPERTIES)))
    assert len(placeholders) == 3
    for placeholder in placeholders:
        assert f"`{placeholder}`" in readme, placeholder


# --- the documents agree with the connector ------------------------------------------------------


def connector_readme_actions() -> set[tuple[str, str, str]]:
    """Rows of the actions table in connector/README.md: summary, operationId, method and path."""
    rows = re.findall(
        r"^\| \*([^*|]+)\* \| `([A-Za-z]+)` \| `([A-Z]+ [^`]+)` \|", (CONNECTOR / "README.md").read_text(), re.M
    )
    return {(summary, operation_id, route) for summary, operation_id, route in rows}


def readme_connector_section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("\n## Power Automate custom connector\n")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else len(readme)]


def test_connector_readme_lists_exactly_the_operations_of_the_swagger() -> None:
    expected = {
        (op["summary"], op["operationId"], f"{method.upper()} {SWAGGER['basePath']}{path}")
        for path, method, op in OPERATIONS
    }
    assert connector_readme_actions() == expected


def test_readme_names_exactly_the_actions_of_the_connector() -> None:
    section = readme_connector_section()
    listed = set(re.findall(r"^- \*([^*]+)\*", section, re.M))
    assert listed == {op["summary"] for _, _, op in OPERATIONS}
    numbers = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
    for stated in re.findall(r"\b(two|three|four|five|six) actions\b", section, re.I):
        assert numbers[stated.lower()] == len(OPERATIONS), f"the README says {stated} actions"


def test_readmes_say_the_host_comes_from_the_connection() -> None:
    connector_readme = (CONNECTOR / "README.md").read_text()
    assert "Function app host name" in connector_readme
    assert "set `host`" not in connector_readme
    assert "host name" in readme_connector_section()


@pytest.mark.parametrize("property_name", ["Website", "Privacy policy"])
def test_metadata_links_point_at_this_project(property_name: str) -> None:
    [value] = [m["propertyValue"] for m in SWAGGER["x-ms-connector-metadata"] if m["propertyName"] == property_name]
    assert "microsoft.com" not in value
    file_name, _, anchor = value.partition("#")
    document = (ROOT / file_name).read_text()
    headings = {
        re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", document, re.M)
    }
    assert anchor in headings, f"{value}: no such heading"
    assert f"`{value}`" in (CONNECTOR / "README.md").read_text()


# --- certification rules for strings -------------------------------------------------------------

FORBIDDEN_MARKS = set("'\"`\u2018\u2019\u201c\u201d")
PRODUCT_NAMES = re.compile(r"\b(API|Connector|Power Apps|Power Automate|Power Platform|Copilot Studio|Logic Apps)\b")
SMALL_WORDS = {"a", "an", "the", "and", "or", "of", "to", "in", "on", "at", "by", "for", "per", "from"}
IDENTIFIERS = {"iCalUId"}
TEXT_KEYS = ("summary", "description", "x-ms-summary", "title", "displayName", "tooltip")


def user_facing_strings() -> Iterator[tuple[str, str, str]]:
    """(where, kind, text) for every string a maker reads: swagger titles, summaries and
    descriptions, and the connection and policy texts of apiProperties."""

    def walk(node: Any, where: str) -> Iterator[tuple[str, str, str]]:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and key in TEXT_KEYS:
                    yield f"{where}.{key}", key, value
                elif key not in ("example", "x-ms-connector-metadata", "enum"):
                    yield from walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{where}[{index}]")

    yield from walk(SWAGGER, "swagger")
    yield from walk(PROPERTIES, "apiProperties")


def test_strings_use_plain_english_characters_and_no_apostrophes() -> None:
    checked = 0
    for where, _, text in user_facing_strings():
        checked += 1
        assert text, where
        assert text == text.strip(), where
        assert text.isascii(), f"{where}: {text!r} has characters other than plain English"
        assert text.isprintable(), f"{where}: {text!r} has control characters"
        assert not FORBIDDEN_MARKS & set(text), f"{where}: {text!r} has an apostrophe or a quote"
    assert checked > 100


def test_operation_summaries_follow_the_string_guidance() -> None:
    for _, _, operation in OPERATIONS:
        summary = operation["summary"]
        assert len(summary) <= 80, summary
        assert "/" not in summary, summary
        assert summary[-1].isalnum(), summary
        assert summary[0].isupper(), f"{summary}: sentence case"
        assert summary[1:] == summary[1:].lower(), f"{summary}: sentence case"


def test_parameter_and_property_summaries_are_title_case() -> None:
    for where, kind, text in user_facing_strings():
        if kind != "x-ms-summary":
            continue
        assert len(text) <= 80, where
        for index, word in enumerate(text.split(" ")):
            if word in IDENTIFIERS or (index > 0 and word in SMALL_WORDS):
                continue
            assert word[0].isupper(), f"{where}: {text!r} is not title case"


def test_descriptions_are_sentences() -> None:
    for where, kind, text in user_facing_strings():
        if kind == "description" and where.startswith("swagger"):
            assert text[0].isupper(), f"{where}: {text!r}"
            assert text.endswith("."), f"{where}: {text!r}"


def test_title_and_operations_follow_the_certification_rules() -> None:
    title = SWAGGER["info"]["title"]
    assert len(title) <= 30
    assert title[-1].isalnum()
    assert not PRODUCT_NAMES.search(title)
    description = SWAGGER["info"]["description"]
    assert 30 <= len(description) <= 500
    assert not PRODUCT_NAMES.search(description)
    assert {op["operationId"] for _, _, op in OPERATIONS} == {
        "CancelMeeting",
        "GetCancellationStatus",
        "CancelOrganizerMeetings",
        "GetCancellationBatch",
        "AbortCancellation",
        "RetryCancellation",
        "ListCancellations",
    }
    metadata = {m["propertyName"] for m in SWAGGER["x-ms-connector-metadata"]}
    assert {"Website", "Privacy policy", "Categories"} <= metadata
    for _, _, operation in OPERATIONS:
        assert re.fullmatch(r"[A-Z][a-zA-Z0-9]+", operation["operationId"])
        assert operation["summary"]
        assert operation["description"] != operation["summary"]
        assert operation["description"].endswith(".")
        responses = operation["responses"]
        assert "200" in responses
        assert any(code.startswith("4") for code in responses)
        for code, response in responses.items():
            assert "schema" in response, f"{operation['operationId']} {code}"
        if "202" in responses:  # abort and the list answer at once: no polling
            assert {"Location", "Retry-After"} <= set(responses["202"]["headers"])


# --- the connector's schemas and the models ------------------------------------------------------


def walk_properties(schema: dict[str, Any], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, prop in schema.get("properties", {}).items():
        yield f"{where}.{name}", prop
        yield from walk_properties(prop, f"{where}.{name}")
        if "items" in prop:
            yield from walk_properties(prop["items"], f"{where}.{name}[]")


def test_every_parameter_and_property_has_a_summary() -> None:
    for _, _, operation in OPERATIONS:
        for parameter in operation["parameters"]:
            assert parameter.get("x-ms-summary"), parameter["name"]
    for name, definition in SWAGGER["definitions"].items():
        for where, prop in walk_properties(definition, name):
            if "$ref" not in prop:
                assert prop.get("x-ms-summary"), where


def swagger_type(schema: dict[str, Any]) -> str | None:
    if "anyOf" in schema:
        kinds = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return swagger_type(kinds[0]) if kinds else None
    if "$ref" in schema:
        return "object"
    return {"string": "string", "integer": "integer", "object": "object", "array": "array", "boolean": "boolean"}.get(
        schema.get("type", "")
    )


@pytest.mark.parametrize(
    ("definition", "model"),
    [
        ("CancelMeetingRequest", CancelRequest),
        ("CancellationStatus", CancellationStatus),
        ("CancellationError", CancellationError),
        ("GraphErrorDetail", GraphErrorDetail),
        ("GraphCall", GraphCallView),
    ],
)
def test_connector_schemas_match_the_models(definition: str, model: type[BaseModel]) -> None:
    generated = model.model_json_schema(by_alias=True)
    described = SWAGGER["definitions"][definition]
    assert set(described["properties"]) == set(generated["properties"])
    assert set(described.get("required", [])) == set(generated.get("required", []))
    for name, prop in generated["properties"].items():
        swagger_prop = described["properties"][name]
        expected = "object" if "$ref" in swagger_prop else swagger_prop.get("type")
        assert swagger_type(prop) == expected, name
        for limit in ("maxLength", "minLength"):
            if limit in prop:
                assert swagger_prop.get(limit) == prop[limit], f"{name}.{limit}"
        if "enum" in prop:
            assert swagger_prop["enum"] == prop["enum"]


def test_queue_message_schema_is_generated_from_the_model_and_current() -> None:
    from meeting_cancel.models import queue_message_schema

    committed = json.loads((ROOT / "schemas" / "queue-message.schema.json").read_text())
    assert committed == queue_message_schema(), (
        "run: python -m meeting_cancel.models > schemas/queue-message.schema.json"
    )


def test_queue_message_examples_validate_against_the_schema() -> None:
    schema = json.loads((ROOT / "schemas" / "queue-message.schema.json").read_text())
    for example in sorted((ROOT / "examples").glob("*.queue-message.json")):
        jsonschema.validate(json.loads(example.read_text()), schema)


SHARED_FOLDER = re.compile(r"""["'/]shared["'/]""")


def test_no_test_reads_the_shared_folder_beside_the_project() -> None:
    """A clone without ../shared must pass: the reference schemas are vendored with their licence."""
    assert "MIT License" in (REFERENCE / "LICENSE").read_text()
    for test_file in (ROOT / "tests").rglob("*.py"):
        assert not SHARED_FOLDER.search(test_file.read_text()), f"{test_file} reads the shared folder"
