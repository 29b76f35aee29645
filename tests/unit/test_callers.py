"""Caller rules decided on claims that can be trusted (oid and tid), with no network at all."""

from __future__ import annotations

import base64
import json

import pytest

from meeting_cancel.callers import Caller, authorize_submit, identify
from meeting_cancel.config import Settings, http_auth_level
from meeting_cancel.errors import ConfigurationError
from meeting_cancel.problems import Problem

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ADELE = "0d5d8c5e-1111-4aaa-8bbb-000000000001"
ALEX = "0d5d8c5e-1111-4aaa-8bbb-000000000002"
DIRECTORY = {"adele.vance@contoso.com": ADELE, "alex.wilber@contoso.com": ALEX}
ENTRA = {
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "CALLER_AUTH": "entra",
    "WEBSITE_AUTH_ENABLED": "True",
    "ENTRA_TENANT_ID": TENANT,
}


def header(**claims: str) -> dict[str, str]:
    names = {
        "tid": "http://schemas.microsoft.com/identity/claims/tenantid",
        "oid": "http://schemas.microsoft.com/identity/claims/objectidentifier",
        "scp": "http://schemas.microsoft.com/identity/claims/scope",
        "idp": "http://schemas.microsoft.com/identity/claims/identityprovider",
    }
    document = {"claims": [{"typ": names.get(k, k), "val": v} for k, v in claims.items()], "role_typ": "roles"}
    return {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(document).encode()).decode()}


def resolve(upn: str) -> str | None:
    return DIRECTORY.get(upn.lower())


@pytest.mark.parametrize(
    ("environ", "level"),
    [
        ({}, "function"),
        ({"CALLER_AUTH": "functionKey"}, "function"),
        ({"CALLER_AUTH": "entra", "WEBSITE_AUTH_ENABLED": "True"}, "anonymous"),
    ],
)
def test_the_auth_level_follows_the_caller_mode(environ: dict[str, str], level: str) -> None:
    assert http_auth_level(environ) == level


def test_an_unknown_caller_mode_never_falls_back_to_anonymous() -> None:
    with pytest.raises(ConfigurationError):
        http_auth_level({"CALLER_AUTH": "none"})


def test_a_user_of_the_tenant_is_identified_by_object_id() -> None:
    caller = identify(header(tid=TENANT, oid=ADELE.upper(), scp="user_impersonation"), Settings.from_environ(ENTRA))
    assert caller == Caller(kind="user", id=ADELE)
    assert authorize_submit(caller, "Adele.Vance@contoso.com", object_id_of=resolve) == "the caller is the organizer"
    assert authorize_submit(caller, ADELE, object_id_of=resolve) == "the caller is the organizer"


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"oid": ADELE, "scp": "x"}, "wrongTenant"),
        ({"tid": "f8cdef31-a31e-4b4a-93e4-5f571e91255a", "oid": ADELE, "scp": "x"}, "wrongTenant"),
        ({"tid": TENANT, "scp": "x", "preferred_username": "adele.vance@contoso.com"}, "objectIdRequired"),
        ({"tid": TENANT, "oid": ADELE, "scp": "x", "idp": "live.com"}, "guestNotAllowed"),
        ({"tid": TENANT, "oid": ADELE, "scp": "x", "acct": "1"}, "guestNotAllowed"),
    ],
)
def test_principals_that_cannot_be_trusted_are_refused_with_the_reason(claims: dict[str, str], code: str) -> None:
    with pytest.raises(Problem) as refused:
        identify(header(**claims), Settings.from_environ(ENTRA))
    assert (refused.value.status, refused.value.code) == (403, code)


def test_a_user_naming_someone_else_or_an_unknown_upn_is_refused() -> None:
    alex = Caller(kind="user", id=ALEX)
    for organizer in ("adele.vance@contoso.com", "nobody@contoso.com", ADELE):
        with pytest.raises(Problem) as refused:
            authorize_submit(alex, organizer, object_id_of=resolve)
        assert refused.value.code == "notYourMeeting"


def test_function_key_callers_and_role_holders_never_trigger_a_lookup() -> None:
    def no_lookup(upn: str) -> str | None:
        raise AssertionError("no Graph lookup expected")

    assert authorize_submit(Caller("functionKey", "functionKey"), "a@contoso.com", object_id_of=no_lookup)
    helpdesk = Caller("user", ALEX, roles=frozenset({"Meetings.Cancel.Any"}))
    assert authorize_submit(helpdesk, "a@contoso.com", object_id_of=no_lookup).startswith("app role")


FUNCTION_KEYS = Settings.from_environ({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})


def test_a_function_key_caller_is_scoped_by_a_hash_of_the_key_the_host_read() -> None:
    first = identify({"x-functions-key": "key-one"}, FUNCTION_KEYS)
    second = identify({"X-Functions-Key": "key-two"}, FUNCTION_KEYS)
    by_code = identify({}, FUNCTION_KEYS, {"code": "key-one"})
    header_wins = identify({"x-functions-key": "key-two"}, FUNCTION_KEYS, {"code": "key-one"})

    assert first.scope != second.scope
    assert by_code.scope == first.scope
    assert header_wins.scope == second.scope
    assert "key-one" not in first.scope + repr(first) + first.label
    assert first.label == "functionKey"  # what status records show is unchanged


def test_an_entra_caller_is_scoped_by_its_object_id() -> None:
    user = identify(header(tid=TENANT, oid=ADELE, scp="user_impersonation"), Settings.from_environ(ENTRA))
    assert user.scope == f"user:{ADELE}"
