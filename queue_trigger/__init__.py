"""Queue adapter: hands each message of the work queue to the domain worker.

A raised exception tells the host to deliver the message again (and, after maxDequeueCount, to move
it to poison); every other outcome completes the message.
"""

from __future__ import annotations

import azure.functions as func

from meeting_cancel import deliveries, service, worker

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.queue_trigger(arg_name="msg", queue_name="%CANCEL_QUEUE_NAME%", connection="AzureWebJobsStorage")
def process_cancellation(msg: func.QueueMessage) -> None:
    worker.process(service.current(), delivery_of(msg))  # logs the outcome with the request's id


def delivery_of(msg: func.QueueMessage) -> deliveries.Delivery:
    """What the worker needs of a queue message (its insertion time for the redrive rule)."""
    return deliveries.Delivery(
        body=msg.get_body(),
        message_id=msg.id or "",
        dequeue_count=msg.dequeue_count or 1,
        inserted_at=msg.insertion_time,
    )
