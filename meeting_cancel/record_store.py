"""The persistence layer behind the lifecycle, as Powertools' idempotency utility has it: an
abstract store with a Table Storage implementation (``status_store``) and an in-memory one
(``memory_store``), both honouring ETags the same way (``tests/store_contract.py`` holds them to it).

* ``insert`` stores a new record, or returns None when one with the id exists already.
* ``replace`` writes only if the stored record still has the ETag the record was read with, and
  raises ``ConcurrentUpdate`` otherwise (also when the record was deleted meanwhile).
* ``service_rows`` lists the rows that are not requests: the sweep's hand-over rows and the
  service's secret.
* Outages raise ``StorageUnavailable``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime

from .batch_models import BatchRecord
from .records import StatusRecord
from .service_rows import UnqueuedEntry


class RecordStore(ABC):
    @abstractmethod
    def ensure_exists(self) -> None: ...

    @abstractmethod
    def insert(self, record: StatusRecord) -> StatusRecord | None: ...

    @abstractmethod
    def get(self, request_id: str) -> StatusRecord | None: ...

    @abstractmethod
    def replace(self, record: StatusRecord) -> StatusRecord: ...

    @abstractmethod
    def delete(self, request_id: str) -> None: ...

    @abstractmethod
    def by_batch(self, batch_id: str) -> list[StatusRecord]:
        """The requests of one batch."""

    @abstractmethod
    def get_batch(self, batch_id: str) -> BatchRecord | None: ...

    @abstractmethod
    def put_batch(self, batch: BatchRecord) -> None:
        """Stores the batch record (written last: a batch that exists is complete)."""

    @abstractmethod
    def service_secret(self, name: str, new: Callable[[], str]) -> str:
        """The service's named secret; the first caller stores ``new()``, every later one reads it."""

    @abstractmethod
    def put_unqueued(self, entry: UnqueuedEntry) -> None:
        """Hands a request whose message may be missing to the sweep (writing it twice is harmless)."""

    @abstractmethod
    def unqueued_before(self, moment: datetime, limit: int) -> list[UnqueuedEntry]:
        """Hand-over rows of the minutes before ``moment``'s minute, oldest first, at most ``limit``."""

    @abstractmethod
    def remove_unqueued(self, entry: UnqueuedEntry) -> None:
        """Removes a hand-over row; removing one that is gone is not an error."""
