"""The demo mailboxes and meetings ``make run`` starts with, with stable ids so the printed curl
always works."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .state import rest_id

if TYPE_CHECKING:
    from .sandbox import GraphSandbox


def seed_demo(sandbox: GraphSandbox) -> None:
    for upn, name in (
        ("adele.vance@contoso.com", "Adele Vance"),
        ("alex.wilber@contoso.com", "Alex Wilber"),
        ("megan.bowen@contoso.com", "Megan Bowen"),
    ):
        sandbox.add_mailbox(upn, name)
    sandbox.create_event(
        "adele.vance@contoso.com",
        "Quarterly planning",
        ["alex.wilber@contoso.com", "megan.bowen@contoso.com"],
        event_id=rest_id("demo/planning"),
    )
    sandbox.create_event(
        "adele.vance@contoso.com",
        "Weekly sync",
        ["alex.wilber@contoso.com"],
        event_type="seriesMaster",
        event_id=rest_id("demo/weekly"),
    )
    sandbox.create_event("megan.bowen@contoso.com", "Focus time", event_id=rest_id("demo/focus"))
    sandbox.create_event(
        "megan.bowen@contoso.com", "Design review", ["adele.vance@contoso.com"], event_id=rest_id("demo/review")
    )
