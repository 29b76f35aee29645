"""An operator's controls through the local host with Azurite and the Graph sandbox: abort (alone,
racing the worker, and for a batch), retry and redrive after poison, the list with nextLink paging
and authorization, and retention by the timer function (issue 17; issue 16 section 4)."""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.functions.timer import TimerRequest

from local_runner.graph_sandbox import Fault, GraphSandbox
from meeting_cancel import lifecycle, retention, service
from meeting_cancel.batch_models import BatchRecord
from meeting_cancel.config import Settings
from meeting_cancel.failures import Failure
from meeting_cancel.models import QueuedCancelRequest
from meeting_cancel.request_index import IndexedStore
from meeting_cancel.status_store import StatusStore

from .conftest import ATTENDEE, ORGANIZER
from .support import AppUnderTest, Response
from .test_security import ADELE, ALEX, ALEX_OID, as_caller, principal
from .test_security import entra as entra_mode


@pytest.fixture
def signed_in(app: AppUnderTest, sandbox: GraphSandbox) -> AppUnderTest:
    """The app with Entra callers (test_security's arrangement)."""
    arranged: AppUnderTest = entra_mode.__wrapped__(app, sandbox)  # type: ignore[attr-defined]
    return arranged


WINDOW = {"from": "2026-12-01T00:00:00Z", "to": "2026-12-31T00:00:00Z"}


def abort(app: AppUnderTest, request_id: str, headers: dict[str, str] | None = None) -> Response:
    return app.request("POST", f"/api/cancellations/{request_id}/abort", headers=headers)


def retry(app: AppUnderTest, request_id: str, body: Any = None) -> Response:
    return app.request("POST", f"/api/cancellations/{request_id}/retry", body)


# ----- abort
def test_abort_before_the_graph_call_ends_aborted_and_graph_is_never_called(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    request_id = app.post({"organizer": ORGANIZER, "eventId": meeting}).body["id"]
    answer = abort(app, request_id)
    assert answer.status == 200
    assert answer.body["status"] == "aborted"
    app.drain()
    final = app.status(request_id)
    assert (final.status, final.body["status"]) == (200, "aborted")
    assert sandbox.calls("cancel") == []
    assert app.visible_messages() == 0
    assert app.poison_messages() == []
    again = abort(app, request_id)
    assert (again.status, again.body["code"]) == (409, "alreadyFinal")


def test_abort_while_the_cancel_is_at_graph_is_409_in_flight_and_the_meeting_is_cancelled_once(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    request_id = app.post({"organizer": ORGANIZER, "eventId": meeting}).body["id"]
    during: list[Response] = []
    sandbox.add_fault(Fault(action="hook_after_apply", hook=lambda: during.append(abort(app, request_id))))
    app.drain()
    assert during[0].status == 409
    assert during[0].body["code"] == "inFlight"
    assert int(during[0].headers["retry-after"]) >= 1
    assert app.status(request_id).body["status"] == "cancelled"
    assert sandbox.successful_cancels(meeting) == 1


def test_abort_racing_the_worker_never_ends_aborted_with_a_cancel_sent(
    app: AppUnderTest, sandbox: GraphSandbox
) -> None:
    events = [sandbox.create_event(ORGANIZER, f"Race {n}", [ATTENDEE]) for n in range(16)]
    ids = {app.post({"organizer": ORGANIZER, "eventId": e}).body["id"]: e for e in events}
    answers: dict[str, int] = {}
    worker = threading.Thread(target=app.drain, kwargs={"wait_for_delayed": 8.0})
    worker.start()
    for request_id in random.Random(17).sample(list(ids), len(ids)):
        answers[request_id] = abort(app, request_id).status
    worker.join()
    app.drain(wait_for_delayed=8.0)
    outcomes = {request_id: app.status(request_id).body["status"] for request_id in ids}
    for request_id, event_id in ids.items():
        cancels = sandbox.successful_cancels(event_id)
        if outcomes[request_id] == "aborted":
            assert cancels == 0, request_id
            assert answers[request_id] == 200
        else:
            assert outcomes[request_id] == "cancelled"
            assert cancels == 1, request_id
            assert answers[request_id] == 409
    assert app.poison_messages() == []


def test_batch_abort_stops_every_request_not_yet_sent(app: AppUnderTest, sandbox: GraphSandbox) -> None:
    for n in range(3):
        sandbox.create_event(ORGANIZER, f"Leaver {n}", [ATTENDEE], start=f"2026-12-0{n + 2}T09:00:00")
    batch = app.request("POST", f"/api/organizers/{ORGANIZER}/cancellations", WINDOW).body
    assert batch["total"] == 3
    stopped = app.request("POST", f"/api/batches/{batch['id']}/abort")
    assert stopped.status == 200
    assert stopped.body["counts"]["aborted"] == 3
    assert stopped.body["done"] is True
    app.drain(wait_for_delayed=5.0)
    assert sandbox.calls("cancel") == []
    assert app.request("GET", f"/api/batches/{batch['id']}").body["counts"]["aborted"] == 3


# ----- retry and redrive
def poisoned_request(app: AppUnderTest, sandbox: GraphSandbox, meeting: str, comment: str | None = None) -> str:
    """A request whose five deliveries all met a Graph 500: failed, its message in poison."""
    sandbox.add_fault(Fault(action="status", status=500, code="InternalServerError", times=5))
    body = {"organizer": ORGANIZER, "eventId": meeting} | ({"comment": comment} if comment else {})
    request_id = str(app.post(body).body["id"])
    app.drain()
    failed = app.status(request_id).body
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "graphUnavailable"
    assert len(app.poison_messages()) == 1
    assert sandbox.successful_cancels(meeting) == 0
    return request_id


def test_retry_after_a_poisoned_request_verifies_first_and_cancels_exactly_once(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    request_id = poisoned_request(app, sandbox, meeting)
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    answer = app.request("POST", f"/api/cancellations/{request_id}/retry", None, headers={"traceparent": trace})
    assert answer.status == 202
    assert answer.body["status"] == "queued"
    assert answer.headers["location"].endswith(f"/api/cancellations/{request_id}")
    [message] = app.queue.peek_messages()
    assert json.loads(message.content)["traceparent"].split("-")[1] == trace.split("-")[1]  # the operator's trace
    app.drain()
    assert app.status(request_id).body["status"] == "cancelled"
    assert sandbox.successful_cancels(meeting) == 1
    operations = [c["operation"] for c in sandbox.calls()]
    assert operations[-2:] == ["get", "cancel"]  # the outcome was unknown: read first, then cancel
    assert (retry(app, request_id).status, retry(app, request_id).body["code"]) == (409, "notFailed")


def test_a_poison_message_moved_back_by_hand_makes_one_more_real_attempt(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    request_id = poisoned_request(app, sandbox, meeting, comment="Moved to next week")
    [message] = app.poison.receive_messages(max_messages=1)
    app.put_message(message.content)  # what Storage Explorer's "move" does: a new message
    app.poison.delete_message(message)
    app.drain()
    assert app.status(request_id).body["status"] == "cancelled"
    assert sandbox.successful_cancels(meeting) == 1
    app.put_message(message.content)  # a second copy after the success is a duplicate
    app.drain()
    assert sandbox.successful_cancels(meeting) == 1
    assert app.poison_messages() == []


def test_retry_needs_the_comment_again_because_it_is_never_stored(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    request_id = poisoned_request(app, sandbox, meeting, comment="Sorry, cancelled")
    refused = retry(app, request_id)
    assert (refused.status, refused.body["code"]) == (422, "commentRequired")
    other = retry(app, request_id, {"comment": "Another text"})
    assert (other.status, other.body["code"]) == (422, "commentMismatch")
    assert retry(app, request_id, {"comment": "Sorry, cancelled"}).status == 202
    app.drain()
    assert app.status(request_id).body["status"] == "cancelled"
    assert sandbox.successful_cancels(meeting) == 1


def test_retry_of_a_permanent_failure_is_409_with_the_reason(app: AppUnderTest, sandbox: GraphSandbox) -> None:
    status = app.submit_and_process({"organizer": ORGANIZER, "eventId": "AAMkAGNoSuchEvent="})
    assert status["status"] == "failed"
    refused = retry(app, status["id"])
    assert (refused.status, refused.body["code"]) == (409, "permanentFailure")
    assert status["error"]["code"] in refused.body["detail"]


# ----- the list
def listed(app: AppUnderTest, path: str, headers: dict[str, str]) -> tuple[list[str], str | None]:
    answer = app.request("GET", path, headers=headers)
    assert answer.status == 200, answer.body
    return [item["id"] for item in answer.body["value"]], answer.body.get("nextLink")


def test_the_list_pages_newest_first_and_shows_callers_only_their_own(
    signed_in: AppUnderTest, sandbox: GraphSandbox
) -> None:
    entra = signed_in
    adele = [
        entra.post(
            {"organizer": ORGANIZER, "eventId": sandbox.create_event(ORGANIZER, f"A{n}", [ATTENDEE])},
            headers=as_caller(ADELE),
        ).body["id"]
        for n in range(3)
    ]
    alex = [
        entra.post(
            {"organizer": ATTENDEE, "eventId": sandbox.create_event(ATTENDEE, f"B{n}", [ORGANIZER])},
            headers=as_caller(ALEX),
        ).body["id"]
        for n in range(2)
    ]
    first, link = listed(entra, "/api/cancellations?top=2", as_caller(ADELE))
    assert first == adele[::-1][:2]
    assert link is not None
    assert "code=" not in link
    parts = urlsplit(link)
    rest, end = listed(entra, f"{parts.path}?{parts.query}", as_caller(ADELE))
    assert first + rest == adele[::-1]
    assert end is None or listed(entra, urlsplit(end).path + "?" + urlsplit(end).query, as_caller(ADELE))[0] == []
    mine, _ = listed(entra, "/api/cancellations", as_caller(ALEX))
    assert mine == alex[::-1]
    reader = principal(oid=ALEX_OID, upn=ATTENDEE, roles=("Cancellations.Read.All",))
    everyone, _ = listed(entra, "/api/cancellations?top=100", as_caller(reader))
    assert everyone == (adele + alex)[::-1]
    by_organizer, _ = listed(entra, f"/api/cancellations?organizer={ATTENDEE}", as_caller(reader))
    assert by_organizer == alex[::-1]
    entra.drain()
    cancelled, _ = listed(entra, "/api/cancellations?status=cancelled", as_caller(reader))
    assert sorted(cancelled) == sorted(adele + alex)
    assert listed(entra, "/api/cancellations?status=queued", as_caller(reader))[0] == []


def test_the_list_pages_across_months_and_status_classes_within_from_and_to(app: AppUnderTest, meeting: str) -> None:
    """Nine requests over three months in three status classes: every page follows the last one's
    row key through the month partitions and merges the classes, newest first, none twice."""
    store = IndexedStore(StatusStore(Settings.from_environ()))
    store.ensure_exists()
    now = datetime.now(UTC)
    created = {f"m{n}": now - timedelta(days=20 * n + 1) for n in range(9)}  # about three months
    for request_id, moment in created.items():
        request = QueuedCancelRequest(id=request_id, organizer=ORGANIZER, eventId=meeting)
        record = store.insert(lifecycle.admit(request_id, request, source="http", now=moment, submitted_by="x"))
        assert record is not None
        number = int(request_id[1:])
        if number % 3 == 1:
            store.replace(lifecycle.abort(record, now=moment, by="operator"))
        elif number % 3 == 2:
            store.replace(lifecycle.fail(record, now=moment, failure=Failure("notOrganizer", "x")))

    def every_page(query: str) -> list[str]:
        ids, link = listed(app, f"/api/cancellations?{query}", {})
        while link:
            parts = urlsplit(link)
            more, link = listed(app, f"{parts.path}?{parts.query}", {})
            ids += more
        return ids

    newest_first = sorted(created, key=lambda r: created[r], reverse=True)
    since = (now - timedelta(days=200)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert every_page(f"top=2&from={since}") == newest_first
    window = f"from={(now - timedelta(days=95)).strftime('%Y-%m-%dT%H:%M:%SZ')}"
    window += f"&to={(now - timedelta(days=30)).strftime('%Y-%m-%dT%H:%M:%SZ')}"
    assert every_page(f"top=1&{window}") == [r for r in newest_first if 30 < (now - created[r]).days <= 95]
    assert every_page(f"top=2&status=aborted&from={since}") == [r for r in newest_first if int(r[1:]) % 3 == 1]


def test_the_list_names_every_bad_parameter(app: AppUnderTest) -> None:
    answer = app.request("GET", "/api/cancellations?top=0&status=lost&from=yesterday&colour=red")
    assert answer.status == 400
    assert {e["field"] for e in answer.body["errors"]} == {"top", "status", "from", "colour"}
    blank = app.request("GET", "/api/cancellations?to=")
    assert (blank.status, blank.body["errors"][0]["field"]) == (400, "to")
    forged = app.request("GET", "/api/cancellations?$skiptoken=bm90LWEtdG9rZW4")
    assert (forged.status, forged.body["errors"][0]["field"]) == (400, "$skiptoken")


def test_hostile_list_parameters_and_retry_bodies_get_a_400_that_names_them(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    """Found by attacking the operator's routes: each of these was a 500."""
    for query, field in (
        ("top=%C2%B2", "top"),  # '²' passes str.isdigit()
        ("to=0001-01-01", "to"),  # the default 'from' would be before year 1
        ("from=0001-01-01T00:00:00%2B01:00", "from"),  # in UTC, before year 1
        ("to=9999-12-31T23:59:59-01:00", "to"),  # in UTC, after year 9999
    ):
        answer = app.request("GET", f"/api/cancellations?{query}")
        assert (answer.status, answer.body["errors"][0]["field"]) == (400, field), (query, answer.body)
    token = base64.urlsafe_b64encode(json.dumps(["\u0662\u0660\u0662\u0666\u0660\u0661", "x"]).encode())
    forged = app.request("GET", "/api/cancellations?$skiptoken=" + token.decode().rstrip("="))
    assert (forged.status, forged.body["errors"][0]["field"]) == (400, "$skiptoken")

    request_id = poisoned_request(app, sandbox, meeting, comment="Moved to next week")  # retry needs it again
    for body, code in (
        (b"[" * 1000 + b"]" * 1000, "malformedJson"),
        (json.dumps({"comment": "x" * 8001}).encode(), "invalidRequest"),
        (b'{"comment": "\\ud800"}', "invalidRequest"),
    ):
        answer = app.request("POST", f"/api/cancellations/{request_id}/retry", raw=body)
        assert (answer.status, answer.body["code"]) == (400, code), answer.body
    assert app.status(request_id).body["status"] == "failed"  # none of them retried it


def test_listing_by_status_shows_a_request_as_its_status_reads(app: AppUnderTest, meeting: str) -> None:
    """A new request is stored `accepted` and read as `queued`: listing `status=queued` shows it."""
    request_id = app.post({"organizer": ORGANIZER, "eventId": meeting}).body["id"]
    assert app.status(request_id).body["status"] == "queued"
    assert listed(app, "/api/cancellations?status=queued", {})[0] == [request_id]


# ----- retention
def test_retention_deletes_only_what_is_old_and_final(app: AppUnderTest, sandbox: GraphSandbox, meeting: str) -> None:
    store = IndexedStore(StatusStore(Settings.from_environ()))
    store.ensure_exists()
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=45), now - timedelta(days=3)

    def arranged(
        request_id: str, created: datetime, finished: datetime | None, ok: bool = True, batch: str | None = None
    ) -> None:
        request = QueuedCancelRequest(id=request_id, organizer=ORGANIZER, eventId=meeting)
        record = store.insert(
            lifecycle.accept(
                request_id, request, source="http", now=created, submitted_by="functionKey", batch_id=batch
            )
        )
        assert record is not None
        if finished is not None:
            claimed = store.replace(lifecycle.claim(record, now=created, lease_seconds=1))
            final = (
                lifecycle.complete(claimed, now=finished, resolution="cancelled by Graph")
                if ok
                else lifecycle.fail(claimed, now=finished, failure=Failure("notOrganizer", "x"))
            )
            store.replace(final)

    arranged("old-cancelled", old, old)
    arranged("old-failed", old, old + timedelta(days=1), ok=False)
    arranged("old-pending", old, None)
    arranged("old-but-recently-final", old, recent)
    arranged("recent-cancelled", recent, recent)
    for batch_id, moment in (("old-batch", old), ("recent-batch", recent)):
        arranged(f"{batch_id}-child", moment, moment, batch=batch_id)
        store.put_batch(
            BatchRecord(
                id=batch_id,
                organizer=ORGANIZER,
                count=1,
                request_hash="h",
                submitted_by="functionKey",
                created_at=moment,
            )
        )
    out_of_time = retention.purge(service.current(), now=datetime.now(UTC), run_seconds=0)
    assert (out_of_time.finished, out_of_time.requests, out_of_time.rows_read) == (False, 0, 0)
    assert app.status("old-cancelled").status == 200  # a run out of time deletes nothing; the next goes on

    [timer] = [t for t in app.index.timers if t.name == "purge_old_requests"]
    timer.call(**{timer.argument: TimerRequest(past_due=False, schedule_status={}, schedule={})})
    for gone in ("old-cancelled", "old-failed", "old-batch-child"):
        assert app.status(gone).status == 404
    again = retention.purge(service.current(), now=datetime.now(UTC))
    # only the kept rows of requests created before the cutoff are read again; newer ones never
    assert (again.finished, again.requests, again.rows_read) == (True, 0, 2)
    assert app.request("GET", "/api/batches/old-batch").status == 404
    assert app.request("GET", "/api/batches/recent-batch").body["counts"]["cancelled"] == 1
    for kept in ("old-pending", "old-but-recently-final", "recent-cancelled"):
        assert app.status(kept).status in (200, 202), kept
    listed_ids = [
        item["id"]
        for item in app.request(
            "GET", "/api/cancellations?top=100&from=" + (now - timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
        ).body["value"]
    ]
    assert "old-cancelled" not in listed_ids
    assert {"old-pending", "old-but-recently-final", "recent-cancelled"} <= set(listed_ids)


def test_retention_writes_a_missing_class_row_so_the_record_is_still_deleted(app: AppUnderTest, meeting: str) -> None:
    """A record moved to `cancelled` whose new class row could not be written keeps only its
    `pending` row: retention, reading that row, writes the missing one, and the next run deletes it."""
    inner = StatusStore(Settings.from_environ())
    store = IndexedStore(inner)
    store.ensure_exists()
    old = datetime.now(UTC) - timedelta(days=45)
    request = QueuedCancelRequest(id="row-lost", organizer=ORGANIZER, eventId=meeting)
    record = store.insert(lifecycle.accept("row-lost", request, source="http", now=old, submitted_by="x"))
    assert record is not None
    inner.replace(lifecycle.complete(record, now=old, resolution="cancelled by Graph"))  # no class row moved

    first = retention.purge(service.current(), now=datetime.now(UTC))
    assert (first.stale_rows, first.requests) == (1, 0)
    assert app.status("row-lost").status == 200
    second = retention.purge(service.current(), now=datetime.now(UTC))
    assert second.requests == 1
    assert app.status("row-lost").status == 404


@pytest.mark.parametrize("days", ["7", "x"])
def test_retention_shorter_than_a_message_can_live_is_refused(days: str) -> None:
    from meeting_cancel.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as raised:
        Settings.from_environ({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "STATUS_RETENTION_DAYS": days})
    assert raised.value.setting == "STATUS_RETENTION_DAYS"


def test_the_retention_timer_is_daily_in_utc(app: AppUnderTest) -> None:
    [timer] = [t for t in app.index.timers if t.name == "purge_old_requests"]
    start = datetime(2026, 12, 1, tzinfo=UTC)
    assert timer.schedule.shortest_interval(start) == timedelta(days=1)
    time.sleep(0)
