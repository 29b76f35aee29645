"""The README's examples against the seeded sandbox of ``make run``: one meeting, one occurrence of
the weekly series (also the one moved to another day), one day of the all-day series, and the
offboarding window with its series."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_runner.graph_sandbox import GraphSandbox
from local_runner.graph_sandbox.seed import ALL_DAY_SERIES, PLANNING, WEEKLY_SERIES

from .support import AppUnderTest

ADELE = "adele.vance@contoso.com"


@pytest.fixture
def sandbox() -> Iterator[GraphSandbox]:
    """The sandbox as ``make run`` seeds it."""
    graph = GraphSandbox(seed=True).start()
    yield graph
    graph.stop()


def test_the_seeded_meeting_is_cancelled(app: AppUnderTest) -> None:
    status = app.submit_and_process({"organizer": ADELE, "eventId": PLANNING, "comment": "Planning moves."})
    assert status["status"] == "cancelled"
    assert status["recipients"] == 2


@pytest.mark.parametrize(
    ("day", "zone"),
    [("2026-12-08", "Europe/Berlin"), ("2026-12-15", "W. Europe Standard Time")],  # the 15th was moved to the 16th
)
def test_one_occurrence_of_the_seeded_weekly_series(
    app: AppUnderTest, sandbox: GraphSandbox, day: str, zone: str
) -> None:
    status = app.submit_and_process(
        {"organizer": ADELE, "eventId": WEEKLY_SERIES, "occurrenceDate": day, "timeZone": zone}
    )

    assert status["status"] == "cancelled", status
    assert WEEKLY_SERIES in sandbox.state.events[ADELE]


def test_one_day_of_the_seeded_all_day_series(app: AppUnderTest, sandbox: GraphSandbox) -> None:
    status = app.submit_and_process(
        {"organizer": ADELE, "eventId": ALL_DAY_SERIES, "occurrenceDate": "2026-12-11", "timeZone": "Europe/Berlin"}
    )
    assert status["status"] == "cancelled", status
    assert sandbox.state.events[ADELE][ALL_DAY_SERIES]["cancelledOccurrences"] == [f"OID.{ALL_DAY_SERIES}.2026-12-11"]


def test_the_readme_offboarding_preview_shows_both_series_whole(app: AppUnderTest) -> None:
    preview = app.request(
        "POST",
        f"/api/organizers/{ADELE}/cancellations",
        {"from": "2026-12-01T00:00:00Z", "to": "2027-06-30T00:00:00Z", "preview": True},
    ).body

    kinds = {m["subject"]: m for m in preview["meetings"]}
    assert set(kinds) == {"Quarterly planning", "Weekly sync", "Support rota"}
    assert (kinds["Weekly sync"]["seriesStart"], kinds["Weekly sync"]["seriesEnd"]) == ("2026-12-01", "2026-12-22")
    assert kinds["Support rota"]["kind"] == "series"
    assert preview["recipients"] == 2 + 1 + 2
    assert preview["estimatedCompletion"]
