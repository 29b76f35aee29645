"""An HTTP forwarder in front of one Azurite service that fails chosen calls: a storage fault
injected where it happens, so intake and the sweep meet the SDKs' real errors and retries.

A rule matches a method, a pattern searched in the percent-decoded path and optionally text in the
body, and does one of:

* ``refuse``: answers 503 Server Busy without forwarding (nothing was stored);
* ``lose``: forwards the call (it is stored) and drops the connection unanswered (the answer is lost).

``times`` bounds how many calls a rule catches (None: every one until ``clear``). The storage SDKs
retry a refused call (the queue client twice, the table client twice), so a rule meant to fail one
operation catches three calls; the queue client retries a lost answer too (each try lands), the
table client does not retry a POST whose answer never came (azure-core retries those only for
idempotent methods).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from local_runner.azurite import Azurite


@dataclass
class Rule:
    method: str
    path: str
    action: str  # "refuse" or "lose"
    times: int | None = None
    body: str | None = None
    caught: int = 0

    def matches(self, method: str, path: str, body: bytes) -> bool:
        if self.times is not None and self.caught >= self.times:
            return False
        if method != self.method or not re.search(self.path, unquote(urlsplit(path).path)):
            return False
        return self.body is None or self.body.encode() in body


class FaultProxy:
    def __init__(self, target_port: int) -> None:
        self.target = f"http://127.0.0.1:{target_port}"
        self.rules: list[Rule] = []
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _rule_for(self, method: str, path: str, body: bytes) -> Rule | None:
        with self._lock:
            self.calls.append((method, unquote(urlsplit(path).path)))
            for rule in self.rules:
                if rule.matches(method, path, body):
                    rule.caught += 1
                    return rule
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                rule = proxy._rule_for(self.command, self.path, body)
                if rule is not None and rule.action == "refuse":
                    self._answer(503, b"", {"x-ms-error-code": "ServerBusy"})
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                reply = proxy._session.request(
                    self.command, proxy.target + self.path, data=body or None, headers=headers, timeout=30
                )
                if rule is not None:  # "lose": stored, and the answer never arrives
                    self.close_connection = True
                    return
                passed = {
                    name: value
                    for name, value in reply.headers.items()
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding")
                }
                self._answer(reply.status_code, reply.content, passed)

            def _answer(self, status: int, content: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_MERGE = _forward

        return Handler


def through_proxies(azurite: Azurite, queue: FaultProxy, table: FaultProxy) -> str:
    """Azurite's connection string with the queue and table endpoints moved behind the proxies."""
    parts = dict(part.split("=", 1) for part in azurite.connection_string.strip(";").split(";"))
    parts["QueueEndpoint"] = f"http://127.0.0.1:{queue.port}/devstoreaccount1"
    parts["TableEndpoint"] = f"http://127.0.0.1:{table.port}/devstoreaccount1"
    return ";".join(f"{k}={v}" for k, v in parts.items())
