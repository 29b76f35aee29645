"""The recipient rate limit's arithmetic: a rolling day, counted in hourly buckets, never early."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meeting_cancel.recipient_budget import bucket_of, earliest_send, plan, used

NOON = datetime(2026, 11, 24, 12, 30, tzinfo=UTC)


def test_a_bucket_counts_for_a_full_day_after_its_last_possible_send() -> None:
    buckets = {bucket_of(NOON): 7}
    assert used(buckets, NOON + timedelta(hours=24)) == 7  # a send at 12:59 is still inside its day
    assert used(buckets, NOON.replace(minute=0) + timedelta(hours=25)) == 0


def test_a_notice_that_fits_goes_now_and_one_that_does_not_waits_for_enough_to_leave() -> None:
    early = bucket_of(NOON - timedelta(hours=20))
    late = bucket_of(NOON - timedelta(hours=2))
    buckets = {early: 6_000, late: 3_900}
    assert earliest_send(buckets, 100, 10_000, NOON) == NOON
    assert earliest_send(buckets, 101, 10_000, NOON) == early + timedelta(hours=25)
    assert earliest_send(buckets, 6_200, 10_000, NOON) == late + timedelta(hours=25)


def test_a_notice_larger_than_the_whole_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="exceed"):
        earliest_send({}, 10_001, 10_000, NOON)


def test_an_offboarding_plan_spreads_notices_over_days_instead_of_bouncing() -> None:
    times = plan({}, [400] * 30, 10_000, NOON, seconds_per_send=1.0)
    assert times[0] == NOON
    assert times[24] == NOON + timedelta(seconds=24)  # 25 x 400 = 10,000: all fit today
    assert times[25] == bucket_of(NOON) + timedelta(hours=25)  # the 26th waits for the first hour to leave
    assert times == sorted(times)
    per_day: dict[datetime, int] = {}
    for moment in times:
        window = [t for t in times if moment - timedelta(hours=24) < t <= moment]
        per_day[moment] = 400 * len(window)
    assert max(per_day.values()) <= 10_000
