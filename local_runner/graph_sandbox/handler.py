"""The sandbox on the wire: the identity endpoint, the sandbox's own API (outbox, calls, faults)
and Graph. A Graph call goes through four small stages: it is recorded, its bearer token checked,
then let through or refused (an arranged fault, throttling), then answered by ``graph_rules``
with any arranged after-effect (a reset, a slow answer, a hook)."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import faults, graph_rules
from .state import Fault

if TYPE_CHECKING:
    from .sandbox import GraphSandbox

log = logging.getLogger("local_runner.graph_sandbox")
IDENTITY_PATH = "/msi/token"
_GUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")


def handler_for(sandbox: GraphSandbox) -> type[BaseHTTPRequestHandler]:
    class Handler(SandboxHandler):
        pass

    Handler.sandbox = sandbox
    return Handler


class _Reset(Exception):
    """Drop the connection without answering."""


class SandboxHandler(BaseHTTPRequestHandler):
    sandbox: GraphSandbox
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # answers go out at once, not after a delayed ACK

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            if parts.path == IDENTITY_PATH:
                self._identity(parse_qs(parts.query))
            elif parts.path.startswith("/sandbox/"):
                self._sandbox_api(method, parts.path, body)
            elif parts.path.startswith("/v1.0/"):
                self._graph(method, parts.path, parse_qs(parts.query), body)
            else:
                self._send(404, {"error": "not found"})
        except _Reset:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    # ----- identity endpoint (App Service / Functions flavour, api-version 2019-08-01)
    def _identity(self, query: dict[str, list[str]]) -> None:
        if self.headers.get("X-IDENTITY-HEADER") != self.sandbox.identity_header:
            self._send(401, {"error": "invalid_request", "error_description": "X-IDENTITY-HEADER missing or wrong"})
            return
        if time.time() < self.sandbox.state.identity_down_until:
            self._send(500, {"error": "service_unavailable", "error_description": "identity endpoint is down"})
            return
        if not query.get("resource"):
            self._send(400, {"error": "invalid_request", "error_description": "resource is required"})
            return
        self._send(200, self.sandbox.issue_token())

    # ----- sandbox API: outbox, calls, faults
    def _sandbox_api(self, method: str, path: str, body: bytes) -> None:
        state = self.sandbox.state
        with state.lock:
            if path == "/sandbox/outbox" and method == "GET":
                self._send(200, {"value": state.outbox, "bounced": state.bounced})
            elif path == "/sandbox/calls" and method == "GET":
                self._send(200, {"value": state.calls, "tokenRequests": state.token_requests})
            elif path == "/sandbox/events" and method == "GET":
                self._send(200, {mailbox: list(events.values()) for mailbox, events in state.events.items()})
            elif path == "/sandbox/faults" and method == "POST":
                self.sandbox.add_fault(Fault(**json.loads(body)))
                self._send(201, {"faults": len(state.faults)})
            elif path == "/sandbox/faults" and method == "DELETE":
                state.faults.clear()
                self._send(204, None)
            else:
                self._send(404, {"error": "not found"})

    # ----- Graph
    def _graph(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> None:
        segments = [unquote(s) for s in path[len("/v1.0/") :].split("/")]
        record = self._record_call(method, path, segments, body)
        if not self.sandbox.token_valid(self.headers.get("Authorization")):
            record["status"] = 401
            self._error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
            return
        client_request_id = self.headers.get("client-request-id")
        if client_request_id is not None and not _GUID.fullmatch(client_request_id):
            # Graph's guidance: a fresh GUID per request (best-practices-concept.md); some workloads
            # refuse anything else (msgraph-sdk-java#2164, "Header Client-Request-Id is not a guid.")
            record["status"] = 400
            self._error(400, "InvalidRequest", "Header Client-Request-Id is not a guid.")
            return
        mailbox = self._mailbox_key(record.get("mailbox", ""))
        fault = faults.take_fault(self.sandbox.state, record["operation"], mailbox)
        if not self._let_through(record, fault, mailbox):
            return
        try:
            faults.wait_latency(self.sandbox.state)
            status, payload = graph_rules.apply(
                self.sandbox, method, segments, query, body, record, self.headers.get("Prefer", "")
            )
        finally:
            faults.leave(self.sandbox.state, mailbox)
        record["status"] = status
        self._after_effect(fault)
        if status >= 400:
            self._error(status, payload["code"], payload["message"])
        else:
            self._send(status, payload)

    def _mailbox_key(self, key: str) -> str:
        """One mailbox, whether a call names it by address or by object id (Graph counts its
        concurrency per app and mailbox, not per spelling)."""
        with self.sandbox.state.lock:
            if key in self.sandbox.state.mailboxes:
                return key
            found = next((m.upn for m in self.sandbox.state.mailboxes.values() if m.id == key), None)
        return found or key

    def _record_call(self, method: str, path: str, segments: list[str], body: bytes) -> dict[str, Any]:
        record: dict[str, Any] = {
            "method": method,
            "path": path,
            "operation": graph_rules.operation_of(method, segments),
            "applied": False,
            "time": time.time(),
            "clientRequestId": self.headers.get("client-request-id"),
            "userAgent": self.headers.get("User-Agent"),
            "body": graph_rules.json_or_none(body),
        }
        if len(segments) > 1:
            record["mailbox"] = segments[1].lower()
        if len(segments) > 3:
            record["eventId"] = segments[3]
        with self.sandbox.state.lock:
            self.sandbox.state.calls.append(record)
        return record

    def _let_through(self, record: dict[str, Any], fault: Fault | None, mailbox: str) -> bool:
        """Answers an arranged status fault or Graph's throttling instead of the call (False)."""
        if fault and fault.action == "raw":
            record["status"] = fault.status
            self.send_response(fault.status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(fault.body)))
            self.end_headers()
            self.wfile.write(fault.body)
            return False
        if fault and fault.action == "status":
            record["status"] = fault.status
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            self._error(fault.status, fault.code, fault.message or f"Injected fault {fault.status}.", headers)
            return False
        if not faults.admit(self.sandbox.state, mailbox):
            record["status"] = 429
            self._error(
                429,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
                {"Retry-After": f"{self.sandbox.state.limits.retry_after:g}"},
            )
            return False
        return True

    @staticmethod
    def _after_effect(fault: Fault | None) -> None:
        if fault and fault.action == "reset_after_apply":
            raise _Reset()
        if fault and fault.action == "slow_after_apply":
            time.sleep(fault.delay)
        if fault and fault.action == "hook_after_apply" and fault.hook is not None:
            fault.hook()

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        request_id = str(uuid.uuid4())
        body = {
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "request-id": request_id,
                    "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    "client-request-id": self.headers.get("client-request-id"),
                },
            }
        }
        self._send(status, body, {"request-id": request_id, **(headers or {})})

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.headers.get("client-request-id"):
            self.send_header("client-request-id", self.headers["client-request-id"])
        if not (headers or {}).get("request-id"):
            self.send_header("request-id", str(uuid.uuid4()))  # Graph answers every call with one
        self.end_headers()
        self.wfile.write(data)
