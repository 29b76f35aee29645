"""The offboarding contracts (window, preview, batch status) as the connector describes them: the
pydantic models in ``meeting_cancel.batch_models`` and connector/apiDefinition.swagger.json
(read only) must name the same properties with the same types.

The swagger describes the preview and the batch status as one definition,
``OrganizerCancellationResult`` (both routes answer with it), so each model is checked against
that definition's properties and together they must cover it exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from meeting_cancel.batch_models import BatchPreview, BatchRequestView, BatchStatus, MeetingView, WindowRequest
from meeting_cancel.records import Status

SWAGGER = json.loads((Path(__file__).resolve().parents[2] / "connector" / "apiDefinition.swagger.json").read_text())
DEFINITIONS: dict[str, Any] = SWAGGER["definitions"]
RESULT = DEFINITIONS["OrganizerCancellationResult"]


def kind(schema: dict[str, Any]) -> str | None:
    """The JSON type of a property, whether pydantic wrote it directly, as a $ref or as anyOf null."""
    if "$ref" in schema:
        return "object"
    if "anyOf" in schema:
        kinds = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return kind(kinds[0]) if kinds else None
    return schema.get("type")


def properties(model: type[BaseModel]) -> dict[str, dict[str, Any]]:
    return dict(model.model_json_schema(by_alias=True)["properties"])


def assert_same_types(model: type[BaseModel], described: dict[str, Any]) -> None:
    for name, prop in properties(model).items():
        assert name in described, f"{model.__name__}.{name} is missing from the swagger"
        swagger = described[name]
        assert kind(prop) == ("object" if "$ref" in swagger else swagger.get("type")), name
        for limit in ("maxLength", "minLength"):
            if limit in prop:
                assert swagger.get(limit) == prop[limit], f"{name}.{limit}"
        if "enum" in prop:
            assert swagger["enum"] == prop["enum"]


@pytest.mark.parametrize(
    ("definition", "model"),
    [("OrganizerCancellationRequest", WindowRequest), ("MeetingPreview", MeetingView)],
)
def test_a_definition_and_its_model_name_the_same_properties(definition: str, model: type[BaseModel]) -> None:
    described = DEFINITIONS[definition]
    assert set(described["properties"]) == set(properties(model))
    assert set(described.get("required", [])) <= set(model.model_json_schema(by_alias=True).get("required", []))
    assert_same_types(model, described["properties"])


def test_the_preview_and_the_batch_status_together_are_the_result_definition() -> None:
    preview, status = properties(BatchPreview), properties(BatchStatus)
    assert set(preview) | set(status) == set(RESULT["properties"])
    for model in (BatchPreview, BatchStatus):
        assert_same_types(model, RESULT["properties"])
        assert set(RESULT.get("required", [])) <= set(model.model_json_schema().get("required", []))
    assert RESULT["properties"]["meetings"]["items"] == {"$ref": "#/definitions/MeetingPreview"}


def test_each_request_of_a_batch_and_the_counts_match_the_result_definition() -> None:
    item = RESULT["properties"]["requests"]["items"]
    assert set(item["properties"]) == set(properties(BatchRequestView))
    assert_same_types(BatchRequestView, item["properties"])
    assert set(RESULT["properties"]["counts"]["properties"]) == {status.public for status in Status}
