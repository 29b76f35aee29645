"""The one place that reads configuration.

Settings come from app settings in Azure and from the environment (or ``local.settings.json``
through the local runner) elsewhere. Anything missing or malformed raises ``ConfigurationError``
naming the setting, so a bad deployment fails at start-up instead of on the first request.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigurationError
from .policy import OrganizerPolicy

APP_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_QUEUE_NAME = "cancel-requests"
DEFAULT_TABLE_NAME = "cancellations"
STORAGE_SETTING = "AzureWebJobsStorage"

_QUEUE_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class StorageSettings:
    """Either a connection string (Azurite, local) or service URIs reached with an identity."""

    connection_string: str | None = None
    queue_service_uri: str | None = None
    table_service_uri: str | None = None
    managed_identity_client_id: str | None = None


@dataclass(frozen=True)
class QueueHostSettings:
    """The parts of host.json ``extensions.queues`` that the worker must agree with."""

    max_dequeue_count: int = 5
    batch_size: int = 16
    new_batch_threshold: int | None = None
    max_polling_interval_seconds: float = 60.0
    visibility_timeout_seconds: float = 0.0
    message_encoding: str = "base64"


@dataclass(frozen=True)
class Settings:
    storage: StorageSettings
    queue_name: str
    table_name: str
    graph_base_url: str
    azure_client_id: str | None
    organizers: OrganizerPolicy
    queue_host: QueueHostSettings
    caller_auth: str = "functionKey"
    platform_auth_enabled: bool = False
    entra_tenant_id: str | None = None
    graph_credential: str = "managed_identity"
    graph_timeout_seconds: float = 30.0
    graph_max_concurrency: int = 4
    throttle_max_wait_seconds: float = 24 * 3600.0
    # Exchange Online's recipient rate limit per mailbox ("Exchange Online limits", sending limits)
    mailbox_recipients_per_day: int = 10_000

    @property
    def poison_queue_name(self) -> str:
        return f"{self.queue_name}-poison"

    @property
    def graph_scope(self) -> str:
        parts = urlsplit(self.graph_base_url)
        return f"{parts.scheme}://{parts.netloc}/.default"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, *, host_json: Path | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            storage=_storage(env),
            queue_name=_match(
                env,
                "CANCEL_QUEUE_NAME",
                DEFAULT_QUEUE_NAME,
                _QUEUE_NAME,
                "3-63 lowercase letters, digits and single hyphens",
            ),
            table_name=_match(
                env,
                "STATUS_TABLE_NAME",
                DEFAULT_TABLE_NAME,
                _TABLE_NAME,
                "3-63 letters and digits, starting with a letter",
            ),
            graph_base_url=_graph_base_url(env),
            azure_client_id=env.get("AZURE_CLIENT_ID") or None,
            organizers=OrganizerPolicy.parse(env.get("ALLOWED_ORGANIZERS")),
            queue_host=read_queue_host_settings(host_json or APP_ROOT / "host.json"),
            caller_auth=_caller_auth(env),
            platform_auth_enabled=_platform_auth(env),
            entra_tenant_id=_entra_tenant_id(env),
            graph_credential=_graph_credential(env),
            graph_timeout_seconds=_number(env, "GRAPH_TIMEOUT_SECONDS", 30.0, minimum=0.1),
            graph_max_concurrency=int(_number(env, "GRAPH_MAX_CONCURRENCY", 4, minimum=1)),
            throttle_max_wait_seconds=_number(env, "THROTTLE_MAX_WAIT_SECONDS", 86400.0, minimum=1),
            mailbox_recipients_per_day=int(_number(env, "MAILBOX_RECIPIENTS_PER_DAY", 10_000, minimum=1)),
        )


def _match(env: Mapping[str, str], name: str, default: str, pattern: re.Pattern[str], rule: str) -> str:
    value = env.get(name) or default
    if not pattern.fullmatch(value):
        raise ConfigurationError(f"{value!r} is not valid: use {rule}", setting=name)
    return value


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{raw!r} is not a number", setting=name) from None
    if value < minimum:
        raise ConfigurationError(f"{raw!r} is below the minimum {minimum:g}", setting=name)
    return value


def _graph_base_url(env: Mapping[str, str]) -> str:
    value = (env.get("GRAPH_BASE_URL") or DEFAULT_GRAPH_BASE_URL).rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigurationError(
            f"{value!r} is not a Graph root such as {DEFAULT_GRAPH_BASE_URL}", setting="GRAPH_BASE_URL"
        )
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigurationError("plain http is only allowed on loopback", setting="GRAPH_BASE_URL")
    return value


def _platform_auth(env: Mapping[str, str]) -> bool:
    return (env.get("WEBSITE_AUTH_ENABLED") or "").lower() == "true"


def _caller_auth(env: Mapping[str, str]) -> str:
    value = env.get("CALLER_AUTH") or "functionKey"
    if value not in ("functionKey", "entra"):
        raise ConfigurationError(f"{value!r} is neither 'functionKey' nor 'entra'", setting="CALLER_AUTH")
    if value == "entra" and not _platform_auth(env):
        raise ConfigurationError(
            "'entra' needs App Service Authentication turned on for the app (the platform then sets "
            "WEBSITE_AUTH_ENABLED=True)",
            setting="CALLER_AUTH",
        )
    return value


def http_auth_level(environ: Mapping[str, str] | None = None) -> str:
    """The auth level the HTTP functions register with, decided by ``CALLER_AUTH``.

    The Functions host checks function keys before any code runs, so routes behind App Service
    Authentication must be anonymous or every Entra caller gets the host's 401 (Microsoft's HTTP
    trigger docs, "Secure an HTTP endpoint in production"); the code's own checks still apply.
    Function-key mode never becomes anonymous.
    """
    return "anonymous" if _caller_auth(os.environ if environ is None else environ) == "entra" else "function"


def _entra_tenant_id(env: Mapping[str, str]) -> str | None:
    """The tenant whose principals may call in entra mode: ``tid`` is checked against it."""
    value = (env.get("ENTRA_TENANT_ID") or "").strip().lower()
    if not value:
        if _caller_auth(env) == "entra":
            raise ConfigurationError(
                "required with CALLER_AUTH=entra: the directory (tenant) id whose callers are accepted",
                setting="ENTRA_TENANT_ID",
            )
        return None
    if not _GUID.fullmatch(value):
        raise ConfigurationError(f"{value!r} is not a tenant id (a GUID)", setting="ENTRA_TENANT_ID")
    return value


def _graph_credential(env: Mapping[str, str]) -> str:
    """The managed identity wherever the platform offers one; an app registration's secret or
    certificate from the environment only on a developer machine pointed at a real tenant."""
    if env.get("IDENTITY_ENDPOINT") or env.get("MSI_ENDPOINT"):
        return "managed_identity"
    if env.get("AZURE_CLIENT_SECRET") or env.get("AZURE_CLIENT_CERTIFICATE_PATH"):
        return "environment"
    return "managed_identity"


def _storage(env: Mapping[str, str]) -> StorageSettings:
    connection = env.get(STORAGE_SETTING)
    if connection:
        return StorageSettings(connection_string=connection)
    queue_uri = env.get(f"{STORAGE_SETTING}__queueServiceUri")
    table_uri = env.get(f"{STORAGE_SETTING}__tableServiceUri")
    account = env.get(f"{STORAGE_SETTING}__accountName")
    if account and not (queue_uri or table_uri):
        queue_uri = f"https://{account}.queue.core.windows.net"
        table_uri = f"https://{account}.table.core.windows.net"
    if not (queue_uri and table_uri):
        raise ConfigurationError(
            "set a connection string (UseDevelopmentStorage=true locally) or, in Azure, "
            f"{STORAGE_SETTING}__queueServiceUri and {STORAGE_SETTING}__tableServiceUri "
            "with __credential=managedidentity",
            setting=STORAGE_SETTING,
        )
    credential = env.get(f"{STORAGE_SETTING}__credential", "managedidentity")
    if credential.lower() != "managedidentity":
        raise ConfigurationError(
            f"only 'managedidentity' is supported, not {credential!r}", setting=f"{STORAGE_SETTING}__credential"
        )
    return StorageSettings(
        queue_service_uri=queue_uri,
        table_service_uri=table_uri,
        managed_identity_client_id=env.get(f"{STORAGE_SETTING}__clientId") or None,
    )


def read_queue_host_settings(host_json: Path) -> QueueHostSettings:
    """Reads host.json so that the worker's idea of 'last delivery' matches the host's."""
    try:
        document = json.loads(host_json.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return QueueHostSettings()
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"not valid JSON: {error}", setting=str(host_json)) from None
    queues = document.get("extensions", {}).get("queues", {})
    defaults = QueueHostSettings()
    return QueueHostSettings(
        max_dequeue_count=int(queues.get("maxDequeueCount", defaults.max_dequeue_count)),
        batch_size=int(queues.get("batchSize", defaults.batch_size)),
        new_batch_threshold=queues.get("newBatchThreshold"),
        max_polling_interval_seconds=_timespan(queues.get("maxPollingInterval"), defaults.max_polling_interval_seconds),
        visibility_timeout_seconds=_timespan(queues.get("visibilityTimeout"), defaults.visibility_timeout_seconds),
        message_encoding=str(queues.get("messageEncoding", defaults.message_encoding)).lower(),
    )


def _timespan(value: object, default: float) -> float:
    """host.json time spans are 'hh:mm:ss[.fff]' strings or milliseconds."""
    if value is None:
        return default
    if isinstance(value, int | float):
        return float(value) / 1000.0
    hours, minutes, seconds = str(value).split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
