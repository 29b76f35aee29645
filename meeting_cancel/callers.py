"""Who is calling, and what they may do.

The app permission can cancel any meeting in the tenant, so the service decides itself:

* ``CALLER_AUTH=functionKey`` (default): system-to-system callers holding a function key; the key
  already proved the caller, the organizer policy bounds what they reach.
* ``CALLER_AUTH=entra``: App Service Authentication (Microsoft Entra ID) signs callers in and passes
  their claims in ``X-MS-CLIENT-PRINCIPAL``. A signed-in user may cancel only meetings they organize
  unless they hold the ``Meetings.Cancel.Any`` app role; an application needs that role. Reading a
  request's status takes being its submitter or holding ``Cancellations.Read.All``.

The principal header is trusted only when the platform says authentication is on
(``WEBSITE_AUTH_ENABLED=True``); anywhere else it is a forgery and gets 401.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import Settings
from .problems import Problem

PRINCIPAL_HEADER = "X-MS-CLIENT-PRINCIPAL"
ROLE_CANCEL_ANY = "Meetings.Cancel.Any"
ROLE_READ_ALL = "Cancellations.Read.All"
FUNCTION_KEY_CALLER = "functionKey"
_OID = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
_UPN = (
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    "upn",
    "preferred_username",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
)
_SCOPE = ("http://schemas.microsoft.com/identity/claims/scope", "scp")
_APP_ID = ("appid", "azp")


@dataclass(frozen=True)
class Caller:
    kind: str  # "functionKey", "user" or "app"
    id: str
    upn: str | None = None
    roles: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        """How the caller is named in status records and logs: no name, no token, no key."""
        return FUNCTION_KEY_CALLER if self.kind == FUNCTION_KEY_CALLER else f"{self.kind}:{self.id}"


def identify(headers: Mapping[str, str], settings: Settings) -> Caller:
    encoded = headers.get(PRINCIPAL_HEADER) or headers.get(PRINCIPAL_HEADER.lower())
    if encoded and not settings.platform_auth_enabled:
        raise Problem(
            401,
            "untrustedPrincipal",
            "Untrusted principal header",
            f"{PRINCIPAL_HEADER} is only accepted from App Service Authentication, which is not "
            "enabled for this app; remove the header.",
        )
    if settings.caller_auth != "entra":
        return Caller(kind=FUNCTION_KEY_CALLER, id=FUNCTION_KEY_CALLER)
    if not encoded:
        raise Problem(
            401,
            "signInRequired",
            "Sign-in required",
            "Sign in with Microsoft Entra ID: send a bearer token for this app's registration.",
        )
    return _from_principal(encoded)


def authorize_submit(caller: Caller, organizer: str) -> str:
    """The rule that lets the caller cancel for this organizer, or a 403 naming the rule that refused."""
    if caller.kind == FUNCTION_KEY_CALLER:
        return "function key"
    if ROLE_CANCEL_ANY in caller.roles:
        return f"app role {ROLE_CANCEL_ANY}"
    if caller.kind == "app":
        raise Problem(
            403,
            "appRoleRequired",
            "App role required",
            f"Applications need the app role {ROLE_CANCEL_ANY} to cancel meetings.",
        )
    if organizer.lower() in {caller.id.lower(), (caller.upn or "").lower()}:
        return "the caller is the organizer"
    raise Problem(
        403,
        "notYourMeeting",
        "Not the organizer",
        f"Signed-in users may cancel only meetings they organize; {organizer!r} is someone else "
        f"(the app role {ROLE_CANCEL_ANY} allows any allowed organizer).",
    )


def authorize_read(caller: Caller, submitted_by: str | None) -> None:
    if caller.kind == FUNCTION_KEY_CALLER or ROLE_READ_ALL in caller.roles or caller.label == submitted_by:
        return
    raise Problem(
        403,
        "notYourRequest",
        "Not your request",
        f"Only the caller who submitted a request, or one holding the app role {ROLE_READ_ALL}, may read it.",
    )


def _from_principal(encoded: str) -> Caller:
    try:
        principal: Any = json.loads(base64.b64decode(encoded, validate=False))
        claims = [(str(c["typ"]), str(c["val"])) for c in principal.get("claims", [])]
    except (binascii.Error, ValueError, TypeError, KeyError, AttributeError):
        raise Problem(
            401, "invalidPrincipal", "Invalid principal header", f"{PRINCIPAL_HEADER} could not be read."
        ) from None
    role_type = principal.get("role_typ") or "roles"
    roles = frozenset(value for kind, value in claims if kind in (role_type, "roles"))
    oid = _first(claims, _OID)
    upn = _first(claims, _UPN)
    if _first(claims, _SCOPE) or upn:
        if not oid:
            raise Problem(401, "invalidPrincipal", "Invalid principal header", "The token has no object id.")
        return Caller(kind="user", id=oid.lower(), upn=upn, roles=roles)
    app_id = _first(claims, _APP_ID) or oid
    if not app_id:
        raise Problem(401, "invalidPrincipal", "Invalid principal header", "The token names no application.")
    return Caller(kind="app", id=app_id.lower(), roles=roles)


def _first(claims: list[tuple[str, str]], kinds: tuple[str, ...]) -> str | None:
    for wanted in kinds:
        for kind, value in claims:
            if kind == wanted and value:
                return value
    return None
