"""Tracking ids of keyed requests: one per caller scope and key, unguessable without the service's
secret, stable for replays. Pure (the in-memory store holds the secret)."""

from __future__ import annotations

import uuid

import pytest

from meeting_cancel import idempotency
from meeting_cancel.callers import Caller
from meeting_cancel.memory_store import InMemoryRecordStore
from meeting_cancel.problems import Problem

HR = Caller(kind="functionKey", id="functionKey", key_hash="a" * 64)
ERP = Caller(kind="functionKey", id="functionKey", key_hash="b" * 64)
ADELE = Caller(kind="user", id="0d5d8c5e-1111-4aaa-8bbb-000000000001")


def test_the_same_caller_and_key_always_reach_the_same_id() -> None:
    store = InMemoryRecordStore()
    first = idempotency.request_id_for("order-1", HR, store)
    assert idempotency.request_id_for("order-1", HR, store) == first
    assert uuid.UUID(first).version == 4


def test_callers_with_other_scopes_get_other_ids_for_the_same_key() -> None:
    store = InMemoryRecordStore()
    ids = {idempotency.request_id_for("order-1", caller, store) for caller in (HR, ERP, ADELE)}
    assert len(ids) == 3


def test_without_the_services_secret_nobody_computes_the_id() -> None:
    """Two deployments (two secrets) give the same caller and key different ids, so the id is a
    function of the secret, not of anything a caller knows."""
    assert idempotency.request_id_for("order-1", ADELE, InMemoryRecordStore()) != idempotency.request_id_for(
        "order-1", ADELE, InMemoryRecordStore()
    )


def test_the_secret_is_created_once_and_kept() -> None:
    store = InMemoryRecordStore()
    made: list[str] = []

    def new() -> str:
        made.append("x")
        return "c2VjcmV0"

    assert store.service_secret("s", new) == store.service_secret("s", new) == "c2VjcmV0"
    assert len(made) <= 2  # built for each asker, stored once
    assert store.service_secret("s", lambda: "other") == "c2VjcmV0"


def test_requests_without_a_key_get_fresh_ids_and_bad_keys_are_400() -> None:
    store = InMemoryRecordStore()
    assert idempotency.request_id_for(None, HR, store) != idempotency.request_id_for(None, HR, store)
    with pytest.raises(Problem) as refused:
        idempotency.request_id_for("has space", HR, store)
    assert refused.value.code == "invalidIdempotencyKey"
