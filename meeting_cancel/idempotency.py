"""Idempotency for both doors that accept work (single requests and batches): an
``Idempotency-Key`` becomes the request's id, the body becomes a fingerprint, and a replay is
answered from what was stored, or refused when the body changed.

The id of a keyed request is HMAC-SHA256(service secret, caller scope + key), shaped as a UUID:

* **scoped**: the scope is what the platform proved about the caller (``Caller.scope``: the hash of
  the function key it sent, or its Entra object or application id), so two callers using the same
  key get two requests and never see each other's;
* **unguessable**: the secret is 32 random bytes the service creates in its own table on first use
  (``service_rows``), so nobody without storage access can compute another caller's id, and the
  request record itself is the idempotency record: no extra row, no extra write per request. A
  secret from settings would only move the same trust elsewhere (Key Vault, its rotation); the
  table already holds every id the secret protects;
* **stable**: the same caller, key and body always reach the one stored request. Rotating a
  function key starts a new scope, as a new caller.

Requests without a key get a random UUID.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import uuid
from typing import Any
from weakref import WeakKeyDictionary

from .callers import Caller
from .problems import Problem
from .record_store import RecordStore

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
ID_KEY_ROW = "idempotency"  # the RowKey of the HMAC key in service_rows.SERVICE_PARTITION
_secrets: WeakKeyDictionary[RecordStore, bytes] = WeakKeyDictionary()


def request_id_for(idempotency_key: str | None, caller: Caller, store: RecordStore) -> str:
    """A fresh id, or the one id of this caller's key, so replays find the same record."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    if not _KEY.fullmatch(idempotency_key):
        raise Problem(
            400,
            "invalidIdempotencyKey",
            "Invalid Idempotency-Key",
            "The Idempotency-Key header takes 1 to 255 visible ASCII characters, such as a UUID.",
        )
    return keyed_id(secret_of(store), caller.scope, idempotency_key)


def keyed_id(secret: bytes, scope: str, idempotency_key: str) -> str:
    digest = hmac.new(secret, f"{scope}\n{idempotency_key}".encode(), hashlib.sha256).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def secret_of(store: RecordStore) -> bytes:
    """The store's secret, read once per process (created by the first instance that asks)."""
    cached = _secrets.get(store)
    if cached is None:
        text = store.service_secret(ID_KEY_ROW, lambda: base64.b64encode(secrets.token_bytes(32)).decode())
        cached = _secrets[store] = base64.b64decode(text)
    return cached


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
