"""Who is calling, and what they may do.

The app permission can cancel any meeting in the tenant, so the service decides itself:

* ``CALLER_AUTH=functionKey`` (default): system-to-system callers holding a function key; the key
  already proved the caller, the organizer policy bounds what they reach.
* ``CALLER_AUTH=entra``: App Service Authentication (Microsoft Entra ID) signs callers in and passes
  their claims in ``X-MS-CLIENT-PRINCIPAL``. A signed-in user may cancel only meetings they organize
  unless they hold the ``Meetings.Cancel.Any`` app role; an application needs that role. Reading a
  request's status takes being its submitter or holding ``Cancellations.Read.All``.

Decisions rest on the claims Microsoft says can be trusted for authorization: ``tid`` (the
principal's tenant must be the service's, ``ENTRA_TENANT_ID``) and ``oid`` (the organizer must
resolve to the caller's object id). ``preferred_username``, ``upn`` and ``email`` are never used:
the claims reference ("Access token claims reference", learn.microsoft.com/entra/identity-platform/
access-token-claims-reference) says they are mutable and, for email, unverified. Guests (``idp``
names another issuer, or ``acct`` is 1) are refused: they cannot organize a mailbox of this tenant.

The principal header is trusted only when the platform says authentication is on
(``WEBSITE_AUTH_ENABLED=True``); anywhere else it is a forgery and gets 401.

A caller's ``scope`` is what the platform proved about them, and what scopes their idempotency
keys: in functionKey mode a SHA-256 of the function key they sent (the host validated it before
the app ran; the key itself is never kept), in entra mode their object or application id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import Settings
from .models import GUID
from .problems import Problem

PRINCIPAL_HEADER = "X-MS-CLIENT-PRINCIPAL"
ROLE_CANCEL_ANY = "Meetings.Cancel.Any"
ROLE_READ_ALL = "Cancellations.Read.All"
FUNCTION_KEY_CALLER = "functionKey"
KEY_HEADER = "x-functions-key"
KEY_QUERY = "code"
_OID = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
_TID = ("http://schemas.microsoft.com/identity/claims/tenantid", "tid")
_IDP = ("http://schemas.microsoft.com/identity/claims/identityprovider", "idp")
_ACCOUNT_TYPE = ("acct",)
_SCOPE = ("http://schemas.microsoft.com/identity/claims/scope", "scp")
_APP_ID = ("appid", "azp")


@dataclass(frozen=True)
class Caller:
    kind: str  # "functionKey", "user" or "app"
    id: str
    roles: frozenset[str] = frozenset()
    key_hash: str | None = field(default=None, repr=False)  # functionKey mode: SHA-256 of the key sent

    @property
    def scope(self) -> str:
        """Whose idempotency keys these are: the function key's hash, or the Entra principal."""
        if self.kind == FUNCTION_KEY_CALLER:
            return f"{FUNCTION_KEY_CALLER}:{self.key_hash or ''}"
        return self.label

    @property
    def label(self) -> str:
        """How the caller is named in status records and logs: no name, no token, no key."""
        return FUNCTION_KEY_CALLER if self.kind == FUNCTION_KEY_CALLER else f"{self.kind}:{self.id}"


def identify(headers: Mapping[str, str], settings: Settings, query: Mapping[str, str] | None = None) -> Caller:
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
        return Caller(kind=FUNCTION_KEY_CALLER, id=FUNCTION_KEY_CALLER, key_hash=key_hash(headers, query or {}))
    if not encoded:
        raise Problem(
            401,
            "signInRequired",
            "Sign-in required",
            "Sign in with Microsoft Entra ID: send a bearer token for this app's registration.",
        )
    return _from_principal(encoded, tenant_id=settings.entra_tenant_id)


def key_hash(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """SHA-256 of the function key the host accepted, read as the host reads it: the
    ``x-functions-key`` header when sent, else the ``code`` query parameter (names compared
    case-insensitively). Azure/azure-functions-host, ``src/WebJobs.Script.WebHost/Security/
    Authentication/Keys/AuthenticationLevelHandler.cs``. A function key is a long random string,
    so its unsalted hash reveals nothing and is never logged either."""
    presented = _named(headers, KEY_HEADER)
    if presented is None:
        presented = _named(query, KEY_QUERY)
    return hashlib.sha256(presented.encode()).hexdigest() if presented else None


def _named(values: Mapping[str, str], wanted: str) -> str | None:
    for name, value in values.items():
        if name.lower() == wanted:
            return value
    return None


ObjectIdResolver = Callable[[str], str | None]


def authorize_submit(caller: Caller, organizer: str, *, object_id_of: ObjectIdResolver) -> str:
    """The rule that lets the caller cancel for this organizer, or a 403 naming the rule that refused.

    ``object_id_of`` resolves an organizer's userPrincipalName to its object id (Graph ``GET
    /users/{upn}``); it is called only for a signed-in user naming an organizer by UPN.
    """
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
    organizer_oid = organizer.lower() if GUID.fullmatch(organizer) else object_id_of(organizer)
    if organizer_oid is not None and organizer_oid.lower() == caller.id:
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


def _from_principal(encoded: str, *, tenant_id: str | None) -> Caller:
    try:
        principal: Any = json.loads(base64.b64decode(encoded, validate=False))
        claims = [(str(c["typ"]), str(c["val"])) for c in principal.get("claims", [])]
    except (binascii.Error, ValueError, TypeError, KeyError, AttributeError):
        raise Problem(
            401, "invalidPrincipal", "Invalid principal header", f"{PRINCIPAL_HEADER} could not be read."
        ) from None
    tid = (_first(claims, _TID) or "").lower()
    if not tid or tid != tenant_id:
        raise Problem(
            403,
            "wrongTenant",
            "Caller from another tenant",
            "Only principals of this service's Microsoft Entra tenant may call it; the token "
            + ("names no tenant (tid)." if not tid else f"was issued for tenant {tid}."),
        )
    oid = (_first(claims, _OID) or "").lower()
    if not GUID.fullmatch(oid):
        raise Problem(
            403,
            "objectIdRequired",
            "No object id",
            "The token carries no object id (oid); the service authorizes on oid and tid only, never on "
            "an e-mail address or user name. Request an access token for this app's registration.",
        )
    idp = _first(claims, _IDP)
    if _first(claims, _ACCOUNT_TYPE) == "1" or (idp and tid not in idp.lower()):
        raise Problem(
            403,
            "guestNotAllowed",
            "Guests may not call",
            "Guest accounts cannot organize meetings in this tenant's mailboxes; sign in with a member "
            "account of the tenant.",
        )
    role_type = principal.get("role_typ") or "roles"
    roles = frozenset(value for kind, value in claims if kind in (role_type, "roles"))
    if _first(claims, _SCOPE):
        return Caller(kind="user", id=oid, roles=roles)
    app_id = (_first(claims, _APP_ID) or oid).lower()
    return Caller(kind="app", id=app_id, roles=roles)


def _first(claims: list[tuple[str, str]], kinds: tuple[str, ...]) -> str | None:
    for wanted in kinds:
        for kind, value in claims:
            if kind == wanted and value:
                return value
    return None
