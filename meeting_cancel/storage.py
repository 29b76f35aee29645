"""Clients for queue and table storage, from a connection string or a managed identity.

Retries are short on purpose: the HTTP intake must answer 503 within seconds when storage is down,
and the queue host retries the worker anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from azure.core.exceptions import AzureError
from azure.data.tables import TableClient
from azure.identity import ManagedIdentityCredential
from azure.storage.queue import LinearRetry, QueueClient

from .config import StorageSettings
from .errors import StorageUnavailable

# ``use_env_settings=False``: the SDK's requests session does not look up HTTP(S)_PROXY, NO_PROXY and
# .netrc on every call (requests' ``trust_env``, azure-core ``RequestsTransport``); the app talks to
# its own storage account, never through a proxy, and the lookups were a measurable share of the CPU
# of each storage call (README, Performance).
_TIMEOUTS: dict[str, Any] = {"connection_timeout": 5, "read_timeout": 15, "use_env_settings": False}


@contextmanager
def storage_errors(operation: str, *, passing: tuple[type[AzureError], ...] = ()) -> Iterator[None]:
    """The one translation of the storage SDKs' errors: anything the SDK raises that the block did
    not handle itself becomes ``StorageUnavailable`` naming the operation (as httpx maps transport
    errors to its own tree). ``passing``: answers the caller handles itself outside the block (an
    entity that exists, changed or is missing), raised unchanged."""
    try:
        yield
    except passing:
        raise
    except AzureError as error:
        raise StorageUnavailable(str(error), operation=operation) from error


def queue_client(storage: StorageSettings, queue_name: str) -> QueueClient:
    options: dict[str, Any] = {
        **_TIMEOUTS,
        "retry_policy": LinearRetry(backoff=1, random_jitter_range=1, retry_total=2),
    }
    if storage.connection_string:
        return QueueClient.from_connection_string(storage.connection_string, queue_name, **options)
    assert storage.queue_service_uri is not None
    return QueueClient(storage.queue_service_uri, queue_name, credential=_identity(storage), **options)


def table_client(storage: StorageSettings, table_name: str) -> TableClient:
    options: dict[str, Any] = {**_TIMEOUTS, "retry_total": 2, "retry_backoff_factor": 0.2}
    if storage.connection_string:
        return TableClient.from_connection_string(storage.connection_string, table_name, **options)
    assert storage.table_service_uri is not None
    return TableClient(storage.table_service_uri, table_name, credential=_identity(storage), **options)


_credentials: dict[str | None, ManagedIdentityCredential] = {}


def _identity(storage: StorageSettings) -> ManagedIdentityCredential:
    """One credential per identity and process, so storage tokens are cached and shared."""
    client_id = storage.managed_identity_client_id
    if client_id not in _credentials:
        _credentials[client_id] = ManagedIdentityCredential(client_id=client_id)
    return _credentials[client_id]
