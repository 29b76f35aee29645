"""Bodies into models: the 413, 415 and 400 problems that say what to send instead, and
validation errors listed field by field, each saying what to fix (HTTP bodies and queue messages)."""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .field_reading import MOMENT_HELP
from .models import FIELD_HELP, CancelRequest
from .problems import Problem

ModelT = TypeVar("ModelT", bound=BaseModel)
MAX_BODY_BYTES = 64 * 1024
# No field takes a number anywhere near this long; json's own limit (4,300 digits, CPython's
# int_max_str_digits) would otherwise surface as a bare ValueError.
MAX_NUMBER_DIGITS = 64
# Nesting beyond what any field takes; deeper documents are refused before the recursion limit.
MAX_DEPTH = 32
MAX_SHOWN_NAME = 64
# Listed problems per answer: enough for any honest body; a body of 3,000 unknown fields gets the
# first ones and a count, so the answer and the status record stay small (a Table Storage
# property holds 64 KB).
MAX_LISTED_ERRORS = 20
_JSON_TYPE = re.compile(r"^application/([a-z0-9.+-]+\+)?json$")
_DEPTH_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)  # strings whole, so their brackets do not count


class UnreadableJson(ValueError):
    """The text is not a JSON document this service reads; the message says why, for a person."""


def parse_request(body: bytes, *, content_type: str | None) -> CancelRequest:
    return parse_model(body, CancelRequest, content_type=content_type)


def parse_model(body: bytes, model: type[ModelT], *, content_type: str | None) -> ModelT:
    """The body as ``model``, or a 4xx problem listing every bad field."""
    return validated(model, parse_json(body, content_type=content_type))


def validated(model: type[ModelT], document: Any) -> ModelT:
    """``document`` as ``model``, or the 400 problem listing every bad field."""
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
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(400, "malformedJson", "Malformed JSON", "The body is not UTF-8 text.") from None
    try:
        return load_json(text)
    except UnreadableJson as error:
        raise Problem(400, "malformedJson", "Malformed JSON", f"The body is not valid JSON: {error}.") from None


def load_json(text: str) -> Any:
    """Strict JSON for both doors: no NaN or Infinity, no name twice in one object, no number
    longer than any field takes, no nesting deeper than ``MAX_DEPTH``. Every refusal is an
    ``UnreadableJson`` saying what is wrong, never a RecursionError or json's digit-limit ValueError."""
    _check_depth(text.encode("utf-8", errors="replace"))
    try:
        return json.loads(
            text, parse_constant=_no_constant, parse_int=_integer, object_pairs_hook=_object_without_repeats
        )
    except json.JSONDecodeError as error:
        raise UnreadableJson(f"{error.msg} at line {error.lineno} column {error.colno}") from None
    except (RecursionError, ValueError) as error:
        if isinstance(error, UnreadableJson):
            raise
        raise UnreadableJson("the document cannot be read") from None


def _check_depth(data: bytes) -> None:
    depth = 0
    for token in _DEPTH_TOKENS.finditer(data):
        bracket = token.group()
        if bracket in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise UnreadableJson(f"it nests arrays or objects more than {MAX_DEPTH} deep")
        elif bracket in (b"]", b"}"):
            depth -= 1


def _no_constant(name: str) -> Any:
    raise UnreadableJson(f"{name} is not a JSON value")


def _integer(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise UnreadableJson(f"a number has more than {MAX_NUMBER_DIGITS} digits")
    return int(digits)


def _object_without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for name, value in pairs:
        if name in document:
            raise UnreadableJson(f"the name {shown_name(name)!r} appears twice in one object")
        document[name] = value
    return document


def shown_name(name: object) -> str:
    """A field name as the caller sent it, safe for logs and messages: control characters
    escaped (a newline in a name cannot start a forged log line) and long names cut short."""
    text = str(name)
    if len(text) > MAX_SHOWN_NAME:
        text = text[:MAX_SHOWN_NAME] + "…"
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def describe_errors(error: ValidationError, model: type[BaseModel]) -> list[dict[str, str]]:
    """Turns pydantic's errors into one ``{"field", "message"}`` per problem, each actionable and
    none in the parser's own words; field names are shown escaped (``shown_name``)."""
    fields = {field.alias or name: field for name, field in model.model_fields.items()}
    known = list(fields)
    synonyms: dict[str, str] = getattr(model, "SYNONYMS", {})
    described = []
    for item in error.errors(include_url=False):
        sent = ".".join(str(part) for part in item["loc"]) or str(item.get("ctx", {}).get("field", "(body)"))
        field = shown_name(sent)
        kind = item["type"]
        if kind == "extra_forbidden":
            guess = [synonyms[sent.lower()]] if sent.lower() in synonyms else []
            guess = guess or difflib.get_close_matches(sent, known, n=1, cutoff=0.6)
            hint = f"did you mean {guess[0]!r}? " if guess else ""
            message = f"unknown field; {hint}the fields are {', '.join(known)}"
        elif kind == "missing":
            help_text = FIELD_HELP.get(sent) or (fields[sent].description if sent in fields else None)
            message = f"required: {help_text or sent}"
        elif kind in ("string_type",):
            message = "must be a string"
        elif kind in ("bool_type", "bool_parsing"):
            message = "must be true or false"
        elif kind == "string_too_short":
            message = "must not be empty" if item["ctx"].get("min_length") == 1 else item["msg"].lower()
        elif kind == "string_too_long":
            message = f"is too long: at most {item['ctx']['max_length']} characters"
        elif kind.startswith(("date_", "datetime_", "timezone_")):
            message = MOMENT_HELP
        else:
            message = item["msg"]
        described.append({"field": field, "message": message})
    if len(described) > MAX_LISTED_ERRORS:
        more = len(described) - MAX_LISTED_ERRORS
        described = [*described[:MAX_LISTED_ERRORS], {"field": "(more)", "message": f"{more} more problems not listed"}]
    return described


def validation_detail(errors: list[dict[str, str]]) -> str:
    return "; ".join(f"{e['field']}: {e['message']}" for e in errors)
