"""The recipient budget in Table Storage, shared by concurrent reservers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from azure.data.tables import TableClient

from meeting_cancel.recipient_budget import RecipientBudget, Reservation

MAILBOX = "adele.vance@contoso.com"
NOW = datetime(2026, 11, 24, 12, 30, tzinfo=UTC)


def test_concurrent_reservations_never_pass_the_limit(table: TableClient) -> None:
    budget = RecipientBudget(table, limit=100, clock=lambda: NOW)
    results: list[Reservation | datetime] = []
    lock = threading.Lock()

    def reserve() -> None:
        outcome = budget.reserve(MAILBOX, 7)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=reserve) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    granted = [r for r in results if isinstance(r, Reservation)]
    assert len(results) == 20
    assert len(granted) == 14  # 14 x 7 = 98; a 15th would make 105
    assert sum(budget.usage(MAILBOX).values()) == 98
    assert all(isinstance(r, datetime) and r > NOW for r in results if not isinstance(r, Reservation))


def test_a_refund_gives_back_a_notice_that_was_not_sent(table: TableClient) -> None:
    budget = RecipientBudget(table, limit=10, clock=lambda: NOW)
    first = budget.reserve(MAILBOX, 8)
    assert isinstance(first, Reservation)
    assert isinstance(budget.reserve(MAILBOX, 5), datetime)
    budget.refund(first)
    assert isinstance(budget.reserve(MAILBOX, 5), Reservation)
    assert "contoso" not in " ".join(str(e) for e in table.list_entities())
