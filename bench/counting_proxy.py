"""An HTTP forwarder that counts the requests passing through it: storage transactions, measured
where they happen instead of estimated, each named by what it does (``operation``)."""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters


def operation(service: str, method: str, path: str, query: str = "") -> str:
    """A storage request's kind, from the service and the request's method and path: ``table
    insert``, ``table read``, ``table update``, ``queue receive``, ``queue send``, ``queue delete``…"""
    parts = [p for p in path.split("/") if p]  # the account, then the table or queue, then more
    name = parts[1] if len(parts) > 1 else ""
    if service == "table":
        if name.startswith("Tables"):
            return f"table {'create' if method == 'POST' else 'admin'}"
        keyed = "PartitionKey=" in name or "RowKey=" in name
        kinds = {
            ("POST", False): "table insert",
            ("GET", True): "table read",
            ("GET", False): "table query",
            ("PUT", True): "table update",
            ("MERGE", True): "table merge",
            ("PATCH", True): "table merge",
            ("DELETE", True): "table delete",
        }
        kind = kinds.get((method, keyed), f"table {method.lower()}")
        # The app's coordination table (STATUS_TABLE_NAME + "coord": meeting rows, mailbox slots)
        # is counted apart from the status table, so each guarantee's operations can be told apart.
        return kind.replace("table", "coordination", 1) if name.split("(")[0].endswith("coord") else kind
    if len(parts) >= 3 and parts[2] == "messages":
        if method == "GET":
            return "queue peek" if "peekonly" in query.lower() else "queue receive"
        return {"POST": "queue send", "PUT": "queue update"}.get(
            method, "queue delete" if len(parts) > 3 else "queue clear"
        )
    if len(parts) == 2:
        return {"PUT": "queue create", "GET": "queue properties", "HEAD": "queue properties"}.get(
            method, f"queue {method.lower()}"
        )
    return f"queue {method.lower()}"


class CountingProxy:
    def __init__(self, target: str, service: str = "table") -> None:
        self.target = target.rstrip("/")
        self.service = service
        self.count = 0
        self.operations: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._session.trust_env = False
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=128)
        self._session.mount("http://", adapter)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def reset(self) -> int:
        with self._lock:
            count, self.count = self.count, 0
            self.operations = Counter()
        return count

    def take(self) -> Counter[str]:
        """The operations counted since the last ``reset`` or ``take``, by kind; counting restarts."""
        with self._lock:
            taken, self.operations, self.count = self.operations, Counter(), 0
        return taken

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # answers go out at once, not after a delayed ACK

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                split = urlsplit(self.path)
                kind = operation(proxy.service, self.command, split.path, split.query)
                reply = proxy._session.request(
                    self.command, proxy.target + self.path, data=body, headers=headers, timeout=30
                )
                with proxy._lock:
                    proxy.count += 1
                    proxy.operations[kind if reply.status_code < 400 else f"{kind} ({reply.status_code})"] += 1
                self.send_response(reply.status_code)
                for name, value in reply.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.content)))
                self.end_headers()
                self.wfile.write(reply.content)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_MERGE = _forward

        return Handler


def through(connection_string: str, queue: CountingProxy, table: CountingProxy) -> str:
    """The connection string with its queue and table endpoints sent through the proxies."""
    parts = []
    for part in connection_string.split(";"):
        name, _, value = part.partition("=")
        if name == "QueueEndpoint":
            value = f"{queue.url}/{urlsplit(value).path.strip('/')}"
        elif name == "TableEndpoint":
            value = f"{table.url}/{urlsplit(value).path.strip('/')}"
        parts.append(f"{name}={value}" if name else part)
    return ";".join(parts)
