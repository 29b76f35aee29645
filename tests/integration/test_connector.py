"""The Power Automate custom connector and the queue contract, kept true offline and against the
running service."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import json5
import jsonschema
import pytest
from openapi_spec_validator import validate as validate_openapi
from PIL import Image
from pydantic import BaseModel

from meeting_cancel.models import CancellationError, CancellationStatus, CancelRequest, GraphErrorDetail

ROOT = Path(__file__).resolve().parents[2]
CONNECTOR = ROOT / "connector"
REFERENCE = ROOT.parent / "shared" / "reference" / "power-platform"


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((CONNECTOR / name).read_text()))


def reference_schema(name: str) -> dict[str, Any]:
    path = REFERENCE / name
    if not path.exists():
        pytest.fail(f"{path} is missing: the shared reference schemas sit beside the project at ../shared")
    return dict(json5.loads(path.read_text()))  # the published schemas carry // comments


SWAGGER = load("apiDefinition.swagger.json")
PROPERTIES = load("apiProperties.json")
OPERATIONS = [(path, method, op) for path, item in SWAGGER["paths"].items() for method, op in item.items()]


def test_swagger_is_valid_swagger_2() -> None:
    assert SWAGGER["swagger"] == "2.0"
    validate_openapi(SWAGGER)


def test_swagger_validates_against_the_power_platform_schema() -> None:
    jsonschema.validate(SWAGGER, reference_schema("apiDefinition.swagger.schema.json"))


def test_api_properties_validate_against_the_power_platform_schema() -> None:
    """The published schema predates connectionParameterSets, which the service accepts: each set's
    parameters are validated as connectionParameters of their own."""
    schema = reference_schema("paconn-apiProperties.schema.json")
    sets = PROPERTIES["properties"]["connectionParameterSets"]["values"]
    assert [s["name"] for s in sets] == ["functionKey", "entra"]
    for parameter_set in sets:
        single = copy.deepcopy(PROPERTIES)
        del single["properties"]["connectionParameterSets"]
        single["properties"]["connectionParameters"] = parameter_set["parameters"]
        jsonschema.validate(single, schema)


def test_connections_offer_a_function_key_header_and_entra_id() -> None:
    sets = {s["name"]: s["parameters"] for s in PROPERTIES["properties"]["connectionParameterSets"]["values"]}
    assert sets["functionKey"]["api_key"]["type"] == "securestring"
    assert sets["entra"]["token"]["oAuthSettings"]["identityProvider"] == "aad"
    [header] = [p for p in PROPERTIES["properties"]["policyTemplateInstances"] if p["templateId"] == "setheader"]
    assert header["parameters"]["x-ms-apimTemplateParameter.name"] == "x-functions-key"
    assert "connectionParameters('api_key'" in header["parameters"]["x-ms-apimTemplateParameter.value"]
    assert "code=" not in json.dumps(SWAGGER)


def test_settings_validate_against_the_connectors_cli_schema() -> None:
    jsonschema.validate(load("settings.json"), reference_schema("paconn-settings.schema.json"))


def test_icon_is_230_square_on_the_brand_color() -> None:
    color = PROPERTIES["properties"]["iconBrandColor"].lower()
    assert re.fullmatch(r"#[0-9a-f]{6}", color)
    assert color not in ("#007ee5", "#ffffff")
    with Image.open(CONNECTOR / "icon.png") as icon:
        assert icon.size == (230, 230)
        corner = icon.convert("RGB").getpixel((0, 0))
    assert "#{:02x}{:02x}{:02x}".format(*corner) == color


def test_title_and_operations_follow_the_certification_rules() -> None:
    title = SWAGGER["info"]["title"]
    assert len(title) <= 30
    assert not re.search(r"\b(API|Connector)\b", title, re.IGNORECASE)
    assert {op["operationId"] for _, _, op in OPERATIONS} == {
        "CancelMeeting",
        "GetCancellationStatus",
        "CancelOrganizerMeetings",
        "GetCancellationBatch",
    }
    metadata = {m["propertyName"] for m in SWAGGER["x-ms-connector-metadata"]}
    assert {"Website", "Privacy policy", "Categories"} <= metadata
    for _, _, operation in OPERATIONS:
        assert re.fullmatch(r"[A-Z][a-zA-Z0-9]+", operation["operationId"])
        assert operation["summary"]
        assert operation["description"] != operation["summary"]
        assert operation["description"].endswith(".")
        responses = operation["responses"]
        assert {"200", "202"} <= set(responses)
        assert any(code.startswith("4") for code in responses)
        for code, response in responses.items():
            assert "schema" in response, f"{operation['operationId']} {code}"
        assert {"Location", "Retry-After"} <= set(responses["202"]["headers"])


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


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_nonconforming_response(tmp_path: Path) -> None:
    from local_runner.runner import LocalRunner

    from .conftest import ORGANIZER  # noqa: F401 - documents the seeded organizers the examples hit

    runner = LocalRunner(port=0, data_dir=tmp_path)
    runner.start()
    try:
        assert runner.http is not None
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "st"),
                "run",
                str(CONNECTOR / "apiDefinition.swagger.json"),
                "--url",
                f"{runner.http.base_url}/api",
                "--max-examples",
                "30",
                "--checks",
                "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
                "--phases",
                "examples,coverage,fuzzing",
                "--seed",
                "1",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        runner.stop()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
