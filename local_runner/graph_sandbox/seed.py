"""The demo mailboxes and meetings ``make run`` starts with, with stable ids so the printed curl
always works."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .state import rest_id

if TYPE_CHECKING:
    from .sandbox import GraphSandbox


PLANNING = rest_id("demo/planning")
WEEKLY_SERIES = rest_id("demo/weekly")
ALL_DAY_SERIES = rest_id("demo/rota")


def seed_demo(sandbox: GraphSandbox) -> None:
    for upn, name in (
        ("adele.vance@contoso.com", "Adele Vance"),
        ("alex.wilber@contoso.com", "Alex Wilber"),
        ("megan.bowen@contoso.com", "Megan Bowen"),
    ):
        sandbox.add_mailbox(upn, name, time_zone="Europe/Berlin")
    sandbox.create_event(
        "adele.vance@contoso.com",
        "Quarterly planning",
        ["alex.wilber@contoso.com", "megan.bowen@contoso.com"],
        event_id=PLANNING,
    )
    # A weekly series on Tuesdays at 10:00 UTC; the 15 December occurrence was moved to Wednesday
    # the 16th, so it is listed on the 16th with originalStart on the 15th.
    weekly = sandbox.create_event(
        "adele.vance@contoso.com",
        "Weekly sync",
        ["alex.wilber@contoso.com"],
        event_type="seriesMaster",
        event_id=WEEKLY_SERIES,
        start="2026-12-01T10:00:00",
    )
    tuesdays = [f"2026-12-{day:02d}T10:00:00" for day in (1, 8, 15, 22)]
    occurrences = sandbox.add_occurrences("adele.vance@contoso.com", weekly, tuesdays)
    sandbox.move_occurrence("adele.vance@contoso.com", occurrences[2], "2026-12-16T10:00:00")
    # An all-day series on Fridays: floating midnight-to-midnight dates, as Graph returns them.
    rota = sandbox.create_event(
        "adele.vance@contoso.com",
        "Support rota",
        ["alex.wilber@contoso.com", "megan.bowen@contoso.com"],
        event_type="seriesMaster",
        event_id=ALL_DAY_SERIES,
        start="2026-12-04T00:00:00",
        all_day=True,
    )
    sandbox.add_occurrences("adele.vance@contoso.com", rota, ["2026-12-04", "2026-12-11", "2026-12-18"])
    sandbox.create_event("megan.bowen@contoso.com", "Focus time", event_id=rest_id("demo/focus"))
    sandbox.create_event(
        "megan.bowen@contoso.com", "Design review", ["adele.vance@contoso.com"], event_id=rest_id("demo/review")
    )
