"""ALLOWED_ORGANIZERS: domains, addresses, object ids, '*', and deny when unset."""

from __future__ import annotations

import pytest

from meeting_cancel.policy import OrganizerPolicy


@pytest.mark.parametrize(
    ("setting", "organizer", "allowed"),
    [
        (None, "jane@contoso.com", False),
        ("", "jane@contoso.com", False),
        ("*", "anyone@anywhere.org", True),
        ("@contoso.com", "Jane@Contoso.com", True),
        ("@contoso.com", "jane@sub.contoso.com", False),
        ("@contoso.com", "jane@contoso.com.evil.org", False),
        ("@contoso.com, bob@fabrikam.com", "bob@fabrikam.com", True),
        ("@contoso.com; bob@fabrikam.com", "alice@fabrikam.com", False),
        ("a1b2c3d4-0000-4000-8000-00000000abcd", "a1b2c3d4-0000-4000-8000-00000000abcd", True),
        ("@contoso.com", "a1b2c3d4-0000-4000-8000-00000000abcd", False),
    ],
)
def test_policy(setting: str | None, organizer: str, allowed: bool) -> None:
    assert OrganizerPolicy.parse(setting).allows(organizer) is allowed


def test_unset_policy_tells_which_setting_to_set() -> None:
    refusal = OrganizerPolicy.parse(None).refusal("jane@contoso.com")
    assert "set ALLOWED_ORGANIZERS" in refusal
