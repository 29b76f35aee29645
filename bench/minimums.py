"""The design's minimum storage transactions per cancellation on each path: every operation the
guarantees need, and why. README's performance section prints this table (``python -m
bench.minimums``); a change that adds an operation adds its line here, with the guarantee it serves.

``per`` is what one operation is shared by: ``1`` (each cancellation), ``"batch"`` (one queue
receive fetches up to host.json's batchSize messages) or ``"meetings"`` (once per offboarding).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Operation:
    kind: str
    why: str
    per: int | str = 1


HTTP_PATH = [
    Operation("table insert", "the record exists before the message does: a 202 means durably queued"),
    Operation("queue send", "the work is queued"),
    Operation("queue receive", "the host fetches messages a batch at a time", "batch"),
    Operation(
        "table update",
        "claim: the attempt and its lease recorded before Graph is called, conditional on intake's ETag "
        "carried in the message (one cancel per request; no read unless the record moved on)",
    ),
    Operation("table update", "the outcome recorded before the message is completed"),
    Operation("queue delete", "the message completed once its outcome is stored"),
]

# Guarantees that hold the meeting and the mailbox, on the coordination table, for every cancel.
COORDINATION = [
    Operation(
        "coordination insert",
        "one cancellation per meeting: the meeting's row taken, conditionally, before the cancel (meeting_links)",
    ),
    Operation(
        "coordination write",
        "Graph's 4 per mailbox across instances: a mailbox slot taken with a conditional write (mailbox_slots)",
    ),
    Operation("coordination write", "… and given back once the call returns"),
    Operation(
        "coordination read",
        "Exchange's recipient limit: the mailbox's recipient budget read (recipient_budget)",
    ),
    Operation("coordination write", "… and the notice's recipients reserved with a conditional write"),
]
HTTP_PATH += COORDINATION

# Listing, batch status and retention on a table of millions of records read index rows, never
# scan (request_index): written with the record, and moved when the request's status class changes.
INDEX = [
    Operation(
        "table upsert",
        "listing without a scan: the request's row in its organizer's partition for the month "
        "(sent with the record insert, one round trip)",
    ),
    Operation("table upsert", "… and in the pending class's partition, so listing by status reads only its class"),
    Operation("table upsert", "at the final move: the row in the final status's partition"),
    Operation("table delete", "… and the pending row removed once the record is final"),
]
HTTP_PATH += INDEX

QUEUE_PATH = [
    Operation("queue receive", "the host fetches messages a batch at a time", "batch"),
    Operation(
        "table insert",
        "accept and claim in one write: the record is created already claimed, and the insert fails "
        "if another delivery created it (then it is read)",
    ),
    Operation("table update", "the outcome recorded before the message is completed"),
    Operation("queue delete", "the message completed once its outcome is stored"),
    *COORDINATION,
    *INDEX,
]

OFFBOARDING = [
    Operation("table read", "a replayed batch is answered from storage before Graph is asked", "meetings"),
    *HTTP_PATH,
    Operation("table upsert", "the child's row in its batch's partition: batch status reads children, no scan"),
    Operation("table update", "the batch record, written last: a batch that exists is complete", "meetings"),
    Operation("table upsert", "the batch's row in its month's partition, for retention", "meetings"),
]


def minimum(path: list[Operation], batch_size: int, *, meetings: int = 1) -> float:
    shares = {"batch": batch_size, "meetings": meetings}
    return sum(1 / (op.per if isinstance(op.per, int) else shares[op.per]) for op in path)


def table(path: list[Operation]) -> str:
    lines = ["| operation | per | what it is for |", "|---|---|---|"]
    for op in path:
        per = {1: "1", "batch": "1 ÷ batchSize", "meetings": "1 ÷ meetings in the batch"}[op.per]
        lines.append(f"| {op.kind} | {per} | {op.why} |")
    return "\n".join(lines)


if __name__ == "__main__":
    for name, path in (("HTTP path", HTTP_PATH), ("queue path", QUEUE_PATH), ("offboarding", OFFBOARDING)):
        print(f"\n{name}\n\n{table(path)}")
