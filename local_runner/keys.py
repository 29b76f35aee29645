"""Function keys, checked before the app runs, as the Functions host checks them.

Azure/azure-functions-host ``src/WebJobs.Script.WebHost/Security/Authentication/Keys/AuthenticationLevelHandler.cs``:
the key is read from the ``x-functions-key`` header, else from the ``code`` query parameter (the
header wins when both are sent; ASP.NET Core compares header and query names case-insensitively);
an empty or unknown key grants nothing. ``SecretManager.GetAuthorizationLevelAsync`` matches the
master key (level admin) and then the function keys (level function), comparing values exactly in
constant time (``Key.SecretValueEquals``). ``FunctionInvocationMiddleware`` answers a request that
does not reach the function's level with ``UnauthorizedResult``: 401 with an empty body.

Locally there is one key, which is both the master key and the ``default`` function key: the
setting ``LOCAL_HOST_KEY`` when set, otherwise a fresh random key per start, written to
``<data dir>/host-key`` (mode 0600) so that scripts and the README's curl lines can read it.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

KEY_HEADER = "x-functions-key"
KEY_QUERY = "code"
KEY_SETTING = "LOCAL_HOST_KEY"
KEY_FILE = "host-key"
LEVELS = {"anonymous": 0, "function": 1, "admin": 2}


def new_key() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class HostKeys:
    master_key: str
    function_keys: Mapping[str, str]

    @classmethod
    def single(cls, key: str) -> HostKeys:
        return cls(master_key=key, function_keys={"default": key})

    @property
    def default(self) -> str:
        return self.function_keys.get("default", self.master_key)

    def level_of(self, presented: str | None) -> str:
        """The level a presented key grants: 'admin', 'function' or 'anonymous'."""
        if not presented:
            return "anonymous"
        if _same(presented, self.master_key):
            return "admin"
        if any(_same(presented, value) for value in self.function_keys.values()):
            return "function"
        return "anonymous"

    def allows(self, auth_level: str, headers: Mapping[str, str], query: str) -> bool:
        required = LEVELS.get(auth_level.lower(), LEVELS["function"])
        if required == 0:
            return True
        return LEVELS[self.level_of(presented_key(headers, query))] >= required


def presented_key(headers: Mapping[str, str], query: str) -> str | None:
    """The header's value when the header is sent (even empty), else the first ``code`` value."""
    for name, value in headers.items():
        if name.lower() == KEY_HEADER:
            return value
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name.lower() == KEY_QUERY:
            return value
    return None


def _same(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode(), expected.encode())


def local_host_key(values: Mapping[str, str], data_dir: Path) -> tuple[str, Path | None]:
    """The key for this start and the file it was written to (None when it came from the setting)."""
    key_file = data_dir / KEY_FILE
    configured = values.get(KEY_SETTING)
    if configured:
        with contextlib.suppress(FileNotFoundError):
            key_file.unlink()  # a file left by an earlier start would name a key that no longer works
        return configured, None
    key = new_key()
    data_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(key + "\n")
    return key, key_file
