"""Which mailboxes the service may cancel in.

The app permission reaches every mailbox in the tenant, so the service narrows it itself:
``ALLOWED_ORGANIZERS`` lists domains (``@contoso.com``), addresses, object ids, or ``*``. No
setting means nothing is allowed: a forgotten setting must fail closed, not open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ConfigurationError
from .problems import Problem

SETTING = "ALLOWED_ORGANIZERS"
_DOMAIN = re.compile(r"^@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class OrganizerPolicy:
    allow_all: bool = False
    domains: frozenset[str] = frozenset()
    mailboxes: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, raw: str | None) -> OrganizerPolicy:

        entries = [entry.strip().lower() for entry in re.split(r"[,;\s]+", raw or "") if entry.strip()]
        domains: set[str] = set()
        mailboxes: set[str] = set()
        for entry in entries:
            if entry == "*":
                continue
            if entry.startswith("@"):
                if not _DOMAIN.fullmatch(entry):
                    raise ConfigurationError(f"{entry!r} is not a domain such as @contoso.com", setting=SETTING)
                domains.add(entry[1:])
            elif _GUID.fullmatch(entry) or re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", entry):
                mailboxes.add(entry)
            else:
                raise ConfigurationError(
                    f"{entry!r} is neither '*', a domain (@contoso.com), an address nor an object id",
                    setting=SETTING,
                )
        return cls(allow_all="*" in entries, domains=frozenset(domains), mailboxes=frozenset(mailboxes))

    @property
    def configured(self) -> bool:
        return self.allow_all or bool(self.domains or self.mailboxes)

    def allows(self, organizer: str) -> bool:
        if self.allow_all:
            return True
        normalized = organizer.lower()
        if normalized in self.mailboxes:
            return True
        _, at, domain = normalized.rpartition("@")
        return bool(at) and domain in self.domains

    def refusal(self, organizer: str) -> str:
        """A sentence telling an operator how to allow the organizer."""
        if not self.configured:
            return (
                f"No organizer is allowed yet: set {SETTING} to the domains (@contoso.com), "
                "addresses or object ids whose meetings this service may cancel, or '*'."
            )
        return f"The organizer {organizer!r} is not covered by the {SETTING} setting."

    def require(self, organizer: str) -> None:
        """The 403 every door answers for an organizer outside the policy (the worker records the
        same sentence as a failure)."""
        if not self.allows(organizer):
            raise Problem(403, "organizerNotAllowed", "Organizer not allowed", self.refusal(organizer))
