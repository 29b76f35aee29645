"""IANA and Windows time zone names, mapped through CLDR's windowsZones as tzlocal ships it."""

from __future__ import annotations

import pytest

from meeting_cancel.time_zones import UnknownTimeZone, canonical_name, zone_named


@pytest.mark.parametrize(
    ("name", "iana"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("w. europe standard time", "Europe/Berlin"),
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("Tokyo Standard Time", "Asia/Tokyo"),
        ("UTC", "UTC"),
        ("India Standard Time", "Asia/Calcutta"),
    ],
)
def test_iana_and_windows_names_resolve(name: str, iana: str) -> None:
    assert canonical_name(name) == iana


@pytest.mark.parametrize("name", ["W Europe Standard Time", "Europe/Berlim", "Mars/Olympus", "", "../../etc/passwd"])
def test_unknown_names_are_refused_with_a_hint(name: str) -> None:
    with pytest.raises(UnknownTimeZone) as refused:
        zone_named(name)
    assert "Europe/Berlin" in str(refused.value)


def test_a_near_miss_names_the_closest_known_zone() -> None:
    with pytest.raises(UnknownTimeZone) as refused:
        zone_named("W Europe Standard Time")
    assert "'W. Europe Standard Time'" in str(refused.value)
