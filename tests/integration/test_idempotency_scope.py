"""Idempotency keys are scoped by what the platform proves: in functionKey mode, the function key
the caller sent (the host checked it before the app ran). Two systems holding different keys and
using the same Idempotency-Key get two requests; tracking ids cannot be computed from the key."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from typing import Any

import pytest

from local_runner.graph_sandbox import GraphSandbox
from local_runner.keys import HostKeys, new_key
from meeting_cancel import service
from meeting_cancel.status_store import StatusStore

from .conftest import ATTENDEE, ORGANIZER
from .support import AppUnderTest

OLD_NAMESPACE = uuid.UUID("4f1b8a52-7d1e-4c57-9d36-1f0b6f2a9c11")  # the public namespace ids were once derived in


def test_two_function_keys_with_the_same_idempotency_key_never_see_each_others_request(
    app: AppUnderTest, sandbox: GraphSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hr, erp = new_key(), new_key()
    app.http.keys = HostKeys(master_key=new_key(), function_keys={"hr": hr, "erp": erp})
    hr_meeting = sandbox.create_event(ORGANIZER, "HR", [ATTENDEE])
    erp_meeting = sandbox.create_event(ORGANIZER, "ERP", [ATTENDEE])
    hr_body = {"organizer": ORGANIZER, "eventId": hr_meeting}
    erp_body = {"organizer": ORGANIZER, "eventId": erp_meeting, "comment": "ERP says no."}

    first = app.post(hr_body, headers={"x-functions-key": hr, "Idempotency-Key": "order-1"})
    other = app.post(erp_body, headers={"x-functions-key": erp, "Idempotency-Key": "order-1"})
    assert first.status == other.status == 202  # not 422: the second caller's key is its own
    assert first.body["id"] != other.body["id"]
    assert other.body["eventId"] == erp_meeting

    by_query = app.request(
        "POST", f"/api/cancellations?code={hr}", hr_body, headers={"x-functions-key": hr, "Idempotency-Key": "order-1"}
    )
    assert by_query.body["id"] == first.body["id"]

    for request_id in (first.body["id"], other.body["id"]):
        assert request_id != str(uuid.uuid5(OLD_NAMESPACE, "functionKey\norder-1"))
        assert uuid.UUID(request_id).version == 4

    app.drain()
    assert sandbox.successful_cancels(hr_meeting) == sandbox.successful_cancels(erp_meeting) == 1

    table = service.current().store
    assert isinstance(table, StatusStore)
    stored: list[dict[str, Any]] = list(table._table.list_entities())
    everything = json.dumps(stored, default=str) + "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in (hr, erp, hashlib.sha256(hr.encode()).hexdigest(), hashlib.sha256(erp.encode()).hexdigest()):
        assert secret not in everything


def test_a_key_sent_as_code_alone_scopes_like_the_same_key_in_the_header(app: AppUnderTest, meeting: str) -> None:
    body = {"organizer": ORGANIZER, "eventId": meeting}
    key = app.http.host_key
    by_header = app.request(
        "POST", "/api/cancellations", body, headers={"x-functions-key": key, "Idempotency-Key": "k"}
    )
    by_code = app.http.handle(
        "POST",
        f"/api/cancellations?code={key}",
        {"Content-Type": "application/json", "Idempotency-Key": "k"},
        json.dumps(body).encode(),
    )
    assert by_code.status_code == 202
    assert json.loads(by_code.get_body())["id"] == by_header.body["id"]
