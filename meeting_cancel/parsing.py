"""Bodies into models: the 413, 415 and 400 problems that say what to send instead, and
validation errors listed field by field, each saying what to fix (HTTP bodies and queue messages)."""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .models import FIELD_HELP, CancelRequest
from .problems import Problem

ModelT = TypeVar("ModelT", bound=BaseModel)
MAX_BODY_BYTES = 64 * 1024
_JSON_TYPE = re.compile(r"^application/([a-z0-9.+-]+\+)?json$")


def parse_request(body: bytes, *, content_type: str | None) -> CancelRequest:
    return parse_model(body, CancelRequest, content_type=content_type)


def parse_model(body: bytes, model: type[ModelT], *, content_type: str | None) -> ModelT:
    """The body as ``model``, or a 4xx problem listing every bad field."""
    document = parse_json(body, content_type=content_type)
    try:
        return model.model_validate(document)
    except ValidationError as error:
        errors = describe_errors(error, model)
        raise Problem(400, "invalidRequest", "Invalid request", validation_detail(errors), errors) from None


def parse_json(body: bytes, *, content_type: str | None) -> Any:
    """The body as JSON, or the 413, 415 or 400 problem that says what to send instead."""
    if len(body) > MAX_BODY_BYTES:
        raise Problem(
            413,
            "bodyTooLarge",
            "Body too large",
            f"The body is {len(body)} bytes; at most {MAX_BODY_BYTES} are accepted. Shorten the comment.",
        )
    media_type = (content_type or "application/json").split(";")[0].strip().lower()
    if not _JSON_TYPE.fullmatch(media_type):
        raise Problem(
            415,
            "unsupportedMediaType",
            "Unsupported media type",
            f"The body was sent as {media_type!r}; send JSON with 'Content-Type: application/json'.",
        )
    try:
        document = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise Problem(400, "malformedJson", "Malformed JSON", "The body is not UTF-8 text.") from None
    except json.JSONDecodeError as error:
        raise Problem(
            400,
            "malformedJson",
            "Malformed JSON",
            f"The body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}.",
        ) from None
    return document


def describe_errors(error: ValidationError, model: type[BaseModel]) -> list[dict[str, str]]:
    """Turns pydantic's errors into one ``{"field", "message"}`` per problem, each actionable."""
    known = list(model.model_fields)
    described = []
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"]) or str(item.get("ctx", {}).get("field", "(body)"))
        kind = item["type"]
        if kind == "extra_forbidden":
            guess = difflib.get_close_matches(field, known, n=1, cutoff=0.6)
            hint = f"did you mean {guess[0]!r}? " if guess else ""
            message = f"unknown field; {hint}the fields are {', '.join(known)}"
        elif kind == "missing":
            message = f"required: {FIELD_HELP.get(field, field)}"
        elif kind in ("string_type",):
            message = "must be a string"
        elif kind == "string_too_short":
            message = "must not be empty" if item["ctx"].get("min_length") == 1 else item["msg"].lower()
        elif kind == "string_too_long":
            message = f"is too long: at most {item['ctx']['max_length']} characters"
        else:
            message = item["msg"]
        described.append({"field": field, "message": message})
    return described


def validation_detail(errors: list[dict[str, str]]) -> str:
    return "; ".join(f"{e['field']}: {e['message']}" for e in errors)
