"""Idempotency for both doors that accept work (single requests and batches): an
``Idempotency-Key`` becomes the request's id, the body becomes a fingerprint, and a replay is
answered from what was stored, or refused when the body changed.

A key is scoped to its caller (the caller's label goes into the id), so two callers' keys never
collide; the same key and body always lead to the same id and so to the one stored request.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any

from .callers import Caller
from .problems import Problem

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_NAMESPACE = uuid.UUID("4f1b8a52-7d1e-4c57-9d36-1f0b6f2a9c11")


def request_id_for(idempotency_key: str | None, caller: Caller) -> str:
    """A fresh id, or one derived from the caller and their key, so replays find the same record
    and two callers' keys never collide."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    if not _KEY.fullmatch(idempotency_key):
        raise Problem(
            400,
            "invalidIdempotencyKey",
            "Invalid Idempotency-Key",
            "The Idempotency-Key header takes 1 to 255 visible ASCII characters, such as a UUID.",
        )
    return str(uuid.uuid5(_NAMESPACE, f"{caller.label}\n{idempotency_key}"))


def fingerprint(document: Any) -> str:
    """A stable hash of a JSON document: key order and spacing do not change it."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_replay(stored: str | None, presented: str) -> None:
    """A replay must carry the body the key was first used with."""
    if stored != presented:
        raise Problem(
            422,
            "idempotencyKeyReused",
            "Idempotency key reused",
            "This Idempotency-Key was already used with a different body; use a new key for a different request.",
        )
