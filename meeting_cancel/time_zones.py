"""Time zones as callers name them: IANA (``Europe/Berlin``) or Windows (``W. Europe Standard Time``).

Outlook and Graph hand out Windows names (an event's ``originalStartTimeZone``, mailbox settings),
so a caller copying one should not be refused. Windows names are mapped through CLDR's
windowsZones table as ``tzlocal`` ships it (generated from unicode-org/cldr
``common/supplemental/windowsZones.xml``, territory "001"), not a hand-typed table; IANA data comes
from the ``tzdata`` package, so the answer does not depend on the host image's zoneinfo.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from tzlocal.windows_tz import win_tz

EXAMPLES = "an IANA name such as Europe/Berlin or a Windows name such as W. Europe Standard Time"


class UnknownTimeZone(ValueError):
    """The name is neither IANA nor Windows; the message suggests the closest known names."""


@lru_cache(maxsize=512)
def zone_named(name: str) -> ZoneInfo:
    """The zone for an IANA or Windows name (Windows names case-insensitively, as Windows treats them)."""
    cleaned = name.strip()
    key = cleaned if cleaned in _iana_names() else _windows_names().get(cleaned.lower())
    if key is None:
        raise UnknownTimeZone(_hint(cleaned))
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownTimeZone(_hint(cleaned)) from None


def canonical_name(name: str) -> str:
    """The IANA key for a name, for records and Graph queries."""
    return str(zone_named(name).key)


@lru_cache(maxsize=1)
def _iana_names() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=1)
def _windows_names() -> dict[str, str]:
    return {windows.lower(): iana for windows, iana in win_tz.items()}


def _hint(name: str) -> str:
    known = [*win_tz, *sorted(_iana_names())]
    close = difflib.get_close_matches(name, known, n=2, cutoff=0.6)
    suggestion = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"must be {EXAMPLES}{suggestion}"
