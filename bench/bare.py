"""The bare calls a queue-path cancellation needs, made directly with the same SDKs and the same
client options as the app, in a process of its own so that its CPU is its own
(``python -m bench.bare``): receive messages (a batch at a time), and for each one insert the
claimed record and its two index rows (organizer, pending class), insert the meeting's row, take
a mailbox slot (a conditional write), read the event from Graph (its attendees), read and write
the mailbox's recipient budget, POST the cancel to Graph, give the slot back (a conditional
write), replace the record with its outcome, move its class row (write the final one, delete the
pending one), delete the message: the operations ``bench.minimums`` lists for the queue path, and
the two Graph calls.

Reads a JSON job on standard input; prints ``{"cpu": seconds, "count": n}`` for the calls alone
(imports and client construction excluded)."""

from __future__ import annotations

import json
import os
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from azure.core import MatchConditions
from azure.data.tables import TableClient, UpdateMode
from azure.storage.queue import QueueClient, QueueMessage

OPTIONS: dict[str, Any] = {"connection_timeout": 5, "read_timeout": 15, "use_env_settings": False}


def main() -> int:
    job = json.loads(sys.stdin.read())
    table = TableClient.from_connection_string(job["connection"], job["table"], **OPTIONS)
    table.create_table()
    coordination = TableClient.from_connection_string(job["connection"], job["table"] + "coord", **OPTIONS)
    coordination.create_table()
    queue = QueueClient.from_connection_string(job["connection"], job["queue"], **OPTIONS)
    graph = requests.Session()
    graph.trust_env = False
    headers = {"Authorization": f"Bearer {job['token']}"}
    lock = threading.Lock()
    done = [0]

    def one(message: QueueMessage) -> None:
        document = json.loads(message.content)
        now = datetime.now(UTC)
        entity = {
            "PartitionKey": document["id"],
            "RowKey": "request",
            "status": "processing",
            "organizer": document["organizer"],
            "event_id": document["eventId"],
            "source": "queue",
            "created_at": now,
            "updated_at": now,
            "has_comment": False,
            "submitted_by": "queue",
            "attempts": 1,
            "in_flight_until": now + timedelta(seconds=40),
            "outcome_unknown": True,
            "throttle_count": 0,
        }
        metadata = table.create_entity(entity)
        row = {"RowKey": f"{10**13 - int(now.timestamp() * 1000):014d}{document['id']}", "id": document["id"]}
        table.upsert_entity({**row, "PartitionKey": f"org-{uuid.uuid4().hex}"})
        table.upsert_entity({**row, "PartitionKey": "class-pending"})
        coordination.create_entity(
            {"PartitionKey": f"meeting-{uuid.uuid4().hex}", "RowKey": "meeting", "owner": document["id"]}
        )
        slot = {"PartitionKey": f"slots-{uuid.uuid4().hex}", "RowKey": "0", "holder": document["id"], "expires_at": now}
        taken = coordination.create_entity(slot)
        event = f"{job['graph']}/users/{document['organizer']}/events/{document['eventId']}"
        params = {"$select": "id,isOrganizer,attendees,type"}
        graph.get(event, params=params, headers={**headers, "client-request-id": str(uuid.uuid4())}, timeout=30)
        budget_key = f"budget-{uuid.uuid4().hex}"
        coordination.create_entity({"PartitionKey": budget_key, "RowKey": "0", "recipients": 1})
        coordination.get_entity(budget_key, "0")
        graph.post(f"{event}/cancel", json={}, headers={**headers, "client-request-id": str(uuid.uuid4())}, timeout=30)
        slot.update(holder="", expires_at=datetime(1970, 1, 1, tzinfo=UTC))
        coordination.update_entity(
            slot, mode=UpdateMode.REPLACE, etag=taken["etag"], match_condition=MatchConditions.IfNotModified
        )
        entity.update(status="cancelled", outcome_unknown=False, updated_at=datetime.now(UTC))
        del entity["in_flight_until"]
        table.update_entity(
            entity, mode=UpdateMode.REPLACE, etag=metadata["etag"], match_condition=MatchConditions.IfNotModified
        )
        table.upsert_entity({**row, "PartitionKey": "class-cancelled"})
        table.delete_entity("class-pending", row["RowKey"])
        queue.delete_message(message)
        with lock:
            done[0] += 1

    started = os.times()
    with ThreadPoolExecutor(job["threads"]) as pool:
        while done[0] < job["count"]:
            batch = list(queue.receive_messages(messages_per_page=32, max_messages=32, visibility_timeout=60))
            list(pool.map(one, batch))
    ended = os.times()
    cpu = (ended.user - started.user) + (ended.system - started.system)
    print(json.dumps({"cpu": cpu, "count": done[0]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
