"""The per-mailbox limit across instances, on Azurite: two processes' worth of slot holders, one table."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from azure.data.tables import TableClient

from meeting_cancel.mailbox_slots import MailboxSlots

MAILBOX = "adele.vance@contoso.com"


def test_two_instances_never_hold_more_than_four_slots_of_one_mailbox(table: TableClient) -> None:
    instances = [MailboxSlots(table), MailboxSlots(table)]  # separate caches, as two hosts have
    holding = 0
    peak = 0
    granted = 0
    lock = threading.Lock()

    def worker(slots: MailboxSlots) -> None:
        nonlocal holding, peak, granted
        for _ in range(6):
            lease = slots.acquire(MAILBOX, max_wait=20)
            assert lease is not None
            with lock:
                holding += 1
                granted += 1
                peak = max(peak, holding)
            threading.Event().wait(0.02)
            with lock:
                holding -= 1
            slots.release(lease)

    threads = [threading.Thread(target=worker, args=(instances[i % 2],)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert granted == 60
    assert peak == 4
    assert instances[0].held(MAILBOX) == 0


def test_a_dead_instances_slots_come_back_when_their_lease_expires(table: TableClient) -> None:
    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    dead = MailboxSlots(table, lease_seconds=60, clock=lambda: now)
    leases = [dead.try_acquire(MAILBOX) for _ in range(4)]
    assert all(leases)
    assert dead.try_acquire(MAILBOX) is None

    later = MailboxSlots(table, lease_seconds=60, clock=lambda: now + timedelta(seconds=59))
    assert later.try_acquire(MAILBOX) is None
    after_expiry = MailboxSlots(table, lease_seconds=60, clock=lambda: now + timedelta(seconds=61))
    taken = after_expiry.try_acquire(MAILBOX)
    assert taken is not None

    # The dead holder's late release must not free the row that now belongs to someone else.
    stale = next(lease for lease in leases if lease is not None and lease.row == taken.row)
    dead.release(stale)
    row = table.get_entity(taken.mailbox_key, taken.row)
    assert row["holder"] == taken.holder
    assert after_expiry.held(MAILBOX) == 1  # the new lease; the dead instance's other three expired


def test_mailboxes_do_not_share_slots_and_addresses_are_not_stored(table: TableClient) -> None:
    slots = MailboxSlots(table)
    held = [slots.try_acquire(MAILBOX) for _ in range(4)]
    assert all(held)
    assert slots.try_acquire("ALEX.wilber@contoso.com") is not None
    assert slots.try_acquire(MAILBOX.upper()) is None  # one mailbox, whatever the case
    stored = " ".join(str(entity) for entity in table.list_entities())
    assert "contoso" not in stored
