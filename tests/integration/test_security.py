"""Who may cancel what, in both caller modes; and nothing secret in logs or status records."""

from __future__ import annotations

import base64
import json
import logging
import os
from typing import Any

import pytest

from local_runner.graph_sandbox import Fault, GraphSandbox
from meeting_cancel import service
from meeting_cancel.config import Settings
from meeting_cancel.errors import ConfigurationError
from meeting_cancel.request_index import IndexedStore
from meeting_cancel.status_store import StatusStore

from .conftest import ATTENDEE, ORGANIZER
from .support import AppUnderTest

ADELE_OID = "0d5d8c5e-1111-4aaa-8bbb-000000000001"
ALEX_OID = "0d5d8c5e-1111-4aaa-8bbb-000000000002"
APP_ID = "9f0e1d2c-2222-4ccc-8ddd-000000000003"
APP_OBJECT_ID = "9f0e1d2c-2222-4ccc-8ddd-000000000004"  # app-only tokens carry the service principal's oid
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"


def principal(
    *,
    oid: str | None = None,
    upn: str | None = None,
    roles: tuple[str, ...] = (),
    app_id: str | None = None,
    tid: str | None = TENANT,
    extra: tuple[tuple[str, str], ...] = (),
) -> str:
    claims: list[dict[str, str]] = [{"typ": typ, "val": val} for typ, val in extra]
    if tid:
        claims.append({"typ": "http://schemas.microsoft.com/identity/claims/tenantid", "val": tid})
    if oid:
        claims.append({"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": oid})
    if upn:
        claims += [
            {"typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "val": upn},
            {"typ": "http://schemas.microsoft.com/identity/claims/scope", "val": "user_impersonation"},
        ]
    if app_id:
        claims.append({"typ": "appid", "val": app_id})
    claims += [{"typ": "roles", "val": role} for role in roles]
    document = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles"}
    return base64.b64encode(json.dumps(document).encode()).decode()


ADELE = principal(oid=ADELE_OID, upn=ORGANIZER)
ALEX = principal(oid=ALEX_OID, upn=ATTENDEE)


@pytest.fixture
def entra(app: AppUnderTest, sandbox: GraphSandbox) -> AppUnderTest:
    os.environ.update(
        {
            "CALLER_AUTH": "entra",
            "WEBSITE_AUTH_ENABLED": "True",
            "ENTRA_TENANT_ID": TENANT,
            "ALLOWED_ORGANIZERS": f"@contoso.com, {ADELE_OID}",
        }
    )
    sandbox.add_mailbox(ORGANIZER, object_id=ADELE_OID)
    sandbox.add_mailbox(ATTENDEE, object_id=ALEX_OID)
    service.reset()
    return app


def as_caller(header: str) -> dict[str, str]:
    return {"X-MS-CLIENT-PRINCIPAL": header}


def test_a_principal_header_without_platform_authentication_is_a_forgery(app: AppUnderTest, meeting: str) -> None:
    response = app.post({"organizer": ORGANIZER, "eventId": meeting}, headers=as_caller(ADELE))
    assert response.status == 401
    assert response.body["code"] == "untrustedPrincipal"
    assert app.visible_messages() == 0


def test_entra_mode_without_a_tenant_id_stops_start_up() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_environ(
            {
                "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                "CALLER_AUTH": "entra",
                "WEBSITE_AUTH_ENABLED": "True",
            }
        )
    assert raised.value.setting == "ENTRA_TENANT_ID"


def test_a_principal_of_another_tenant_whose_email_names_the_organizer_is_refused(
    entra: AppUnderTest, meeting: str
) -> None:
    """The reproduction: an email claim set by another tenant's user named Adele's meetings."""
    intruder = principal(
        oid=ALEX_OID,
        tid=OTHER_TENANT,
        extra=(("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", ORGANIZER),),
        upn=ORGANIZER,
    )
    response = entra.post({"organizer": ORGANIZER, "eventId": meeting}, headers=as_caller(intruder))
    assert response.status == 403
    assert response.body["code"] == "wrongTenant"
    assert OTHER_TENANT in response.body["detail"]
    assert entra.visible_messages() == 0


def test_an_email_only_principal_is_refused_with_the_reason(entra: AppUnderTest, meeting: str) -> None:
    email_only = principal(
        extra=(
            ("preferred_username", ORGANIZER),
            ("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", ORGANIZER),
            ("http://schemas.microsoft.com/identity/claims/scope", "user_impersonation"),
        )
    )
    response = entra.post({"organizer": ORGANIZER, "eventId": meeting}, headers=as_caller(email_only))
    assert response.status == 403
    assert response.body["code"] == "objectIdRequired"
    assert "oid" in response.body["detail"]


def test_a_guest_is_refused_even_with_a_matching_upn(entra: AppUnderTest, meeting: str) -> None:
    guest = principal(
        oid=ADELE_OID,
        upn=ORGANIZER,
        extra=(
            (
                "http://schemas.microsoft.com/identity/claims/identityprovider",
                f"https://sts.windows.net/{OTHER_TENANT}/",
            ),
        ),
    )
    response = entra.post({"organizer": ORGANIZER, "eventId": meeting}, headers=as_caller(guest))
    assert response.status == 403
    assert response.body["code"] == "guestNotAllowed"


def test_the_upn_claim_does_not_make_a_user_the_organizer(entra: AppUnderTest, meeting: str) -> None:
    """Only the object id counts: Alex's token claiming Adele's UPN is still Alex."""
    impostor = principal(oid=ALEX_OID, upn=ORGANIZER)
    response = entra.post({"organizer": ORGANIZER, "eventId": meeting}, headers=as_caller(impostor))
    assert response.status == 403
    assert response.body["code"] == "notYourMeeting"


def test_the_organizer_upn_is_resolved_once_through_graph(
    entra: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    for _ in range(3):
        assert entra.post({"organizer": ORGANIZER, "eventId": meeting}, headers=as_caller(ADELE)).status == 202
    lookups = sandbox.calls("user")
    assert len(lookups) == 1
    assert lookups[0]["mailbox"] == ORGANIZER


def test_an_unknown_organizer_upn_is_not_the_caller(entra: AppUnderTest, meeting: str) -> None:
    response = entra.post({"organizer": "nobody@contoso.com", "eventId": meeting}, headers=as_caller(ADELE))
    assert response.status == 403
    assert response.body["code"] == "notYourMeeting"


def test_entra_mode_without_platform_authentication_stops_start_up() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_environ({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "CALLER_AUTH": "entra"})
    assert raised.value.setting == "CALLER_AUTH"
    assert "WEBSITE_AUTH_ENABLED" in str(raised.value)


@pytest.mark.parametrize("header", [None, "not base64 json!", base64.b64encode(b'{"claims": 5}').decode()])
def test_entra_mode_refuses_missing_or_unreadable_principals(
    entra: AppUnderTest, meeting: str, header: str | None
) -> None:
    response = entra.post({"organizer": ORGANIZER, "eventId": meeting}, headers=as_caller(header) if header else None)
    assert response.status == 401
    assert entra.visible_messages() == 0


@pytest.mark.parametrize("organizer", [ORGANIZER, ADELE_OID])
def test_a_user_may_cancel_meetings_they_organize(entra: AppUnderTest, meeting: str, organizer: str) -> None:
    response = entra.post({"organizer": organizer, "eventId": meeting}, headers=as_caller(ADELE))
    assert response.status == 202, response.body
    assert response.body["submittedBy"] == f"user:{ADELE_OID}"


def test_a_user_may_not_cancel_someone_elses_meeting(entra: AppUnderTest, meeting: str) -> None:
    response = entra.post({"organizer": ORGANIZER, "eventId": meeting}, headers=as_caller(ALEX))
    assert response.status == 403
    assert response.body["code"] == "notYourMeeting"
    assert "Meetings.Cancel.Any" in response.body["detail"]
    assert entra.visible_messages() == 0


def test_the_cancel_any_role_allows_any_allowed_organizer_but_not_beyond_the_policy(
    entra: AppUnderTest, meeting: str
) -> None:
    helpdesk = principal(oid=ALEX_OID, upn=ATTENDEE, roles=("Meetings.Cancel.Any",))
    assert entra.post({"organizer": ORGANIZER, "eventId": meeting}, headers=as_caller(helpdesk)).status == 202
    outside = entra.post({"organizer": "ceo@fabrikam.com", "eventId": meeting}, headers=as_caller(helpdesk))
    assert outside.status == 403
    assert outside.body["code"] == "organizerNotAllowed"


def test_an_application_needs_the_cancel_any_role(entra: AppUnderTest, meeting: str) -> None:
    bare = entra.post(
        {"organizer": ORGANIZER, "eventId": meeting}, headers=as_caller(principal(app_id=APP_ID, oid=APP_OBJECT_ID))
    )
    assert bare.status == 403
    assert bare.body["code"] == "appRoleRequired"

    trusted = principal(app_id=APP_ID, oid=APP_OBJECT_ID, roles=("Meetings.Cancel.Any",))
    response = entra.post({"organizer": ORGANIZER, "eventId": meeting}, headers=as_caller(trusted))
    assert response.status == 202
    assert response.body["submittedBy"] == f"app:{APP_ID}"


def test_status_is_shown_only_to_its_submitter_or_a_reader(entra: AppUnderTest, meeting: str) -> None:
    request_id = entra.post({"organizer": ORGANIZER, "eventId": meeting}, headers=as_caller(ADELE)).body["id"]
    path = f"/api/cancellations/{request_id}"

    assert entra.request("GET", path, headers=as_caller(ADELE)).status == 202
    stranger = entra.request("GET", path, headers=as_caller(ALEX))
    assert stranger.status == 403
    assert stranger.body["code"] == "notYourRequest"
    reader = principal(oid=ALEX_OID, upn=ATTENDEE, roles=("Cancellations.Read.All",))
    assert entra.request("GET", path, headers=as_caller(reader)).status == 202


def test_idempotency_keys_of_two_callers_never_collide(entra: AppUnderTest, sandbox: GraphSandbox) -> None:
    adele_meeting = sandbox.create_event(ORGANIZER, "A", [ATTENDEE])
    alex_meeting = sandbox.create_event(ATTENDEE, "B", [ORGANIZER])
    first = entra.post(
        {"organizer": ORGANIZER, "eventId": adele_meeting}, headers={**as_caller(ADELE), "Idempotency-Key": "same"}
    )
    second = entra.post(
        {"organizer": ATTENDEE, "eventId": alex_meeting}, headers={**as_caller(ALEX), "Idempotency-Key": "same"}
    )
    assert first.status == second.status == 202
    assert first.body["id"] != second.body["id"]


def test_queue_messages_are_held_to_the_organizer_policy_without_calling_graph(
    app: AppUnderTest, sandbox: GraphSandbox
) -> None:
    app.put_message({"id": "wf-outside", "organizer": "ceo@fabrikam.com", "eventId": "AAMkAAA="})
    app.drain()

    status = app.status("wf-outside").body
    assert status["status"] == "failed"
    assert status["error"]["code"] == "organizerNotAllowed"
    assert sandbox.calls() == []


SECRET_COMMENT = "Confidential: Adele's restructuring talk is off"


def test_no_token_key_or_comment_reaches_the_logs_or_the_status_record(
    app: AppUnderTest, sandbox: GraphSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    good = sandbox.create_event(ORGANIZER, "Good", [ATTENDEE])
    failing = sandbox.create_event(ORGANIZER, "Failing", [ATTENDEE])
    flaky = sandbox.create_event(ORGANIZER, "Flaky", [ATTENDEE])
    sandbox.add_fault(Fault(action="status", status=403, code="ErrorAccessDenied", times=1))
    ids = []
    for event_id in (failing, good):
        response = app.request(
            "POST",
            f"/api/cancellations?code={app.http.host_key}",
            {"organizer": ORGANIZER, "eventId": event_id, "comment": SECRET_COMMENT},
            headers={"x-functions-key": app.http.host_key},
        )
        ids.append(response.body["id"])
        app.drain()
    sandbox.add_fault(Fault(action="status", status=500, code="InternalServerError", times=1))
    app.post({"organizer": ORGANIZER, "eventId": flaky, "comment": SECRET_COMMENT})
    app.post({"organizer": "x@fabrikam.com", "eventId": flaky, "comment": SECRET_COMMENT})
    app.drain()

    assert [app.status(i).body["status"] for i in ids] == ["failed", "cancelled"]
    tokens = list(sandbox.state.tokens)
    assert tokens
    everything = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert len(caplog.records) > 10
    for secret in (SECRET_COMMENT, "restructuring", app.http.host_key, *tokens):
        assert secret not in everything

    indexed = service.current().store
    assert isinstance(indexed, IndexedStore)
    table = indexed.inner
    assert isinstance(table, StatusStore)
    everything_stored: list[dict[str, Any]] = list(table._table.list_entities())
    assert SECRET_COMMENT not in json.dumps(everything_stored, default=str)  # records and index rows
    stored = [entity for entity in everything_stored if entity["RowKey"] == "request"]
    assert len(stored) == 3
    assert all(entity["has_comment"] for entity in stored)
