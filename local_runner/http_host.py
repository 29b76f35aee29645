"""HTTP triggers under ``/api`` as the Functions host serves them: route, check the key, limit the
body, then run the function with a real ``func.HttpRequest``.

The order is the host's: a path no function declares is 404; a function whose auth level the
request's key does not reach is 401 before the app runs (keys.py); a body over
``FUNCTIONS_REQUEST_BODY_SIZE_LIMIT`` is 413 (Azure/azure-functions-host
``Middleware/HttpRequestBodySizeMiddleware.cs`` sets Kestrel's ``MaxRequestBodySize`` from it;
``ScriptConstants.DefaultMaxRequestBodySize`` is 100 MB when it is unset or not a number).
A path that a function declares for other methods is 405 with ``Allow`` (RFC 9110 §15.5.6); the
Azure host's route constraint answers 404 there (README: where the local host differs). The host's
own answers (404, 405, 401, 413) have empty bodies, as ASP.NET Core's status results do.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import parse_qs, urlsplit

import azure.functions as func

from .http_server import BoundedHTTPServer
from .index import FunctionIndex, HttpFunction, invocation_log
from .invocation import arguments
from .keys import HostKeys, new_key
from .routing import decode_path

log = logging.getLogger("local_runner.host")
BODY_LIMIT_SETTING = "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"
DEFAULT_MAX_BODY_BYTES = 104_857_600


def body_limit(settings: Mapping[str, str]) -> int:
    """The host's reading of FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: a whole number, else the default."""
    value = (settings.get(BODY_LIMIT_SETTING) or "").strip()
    return int(value) if value.lstrip("-").isdigit() and int(value) >= 0 else DEFAULT_MAX_BODY_BYTES


@dataclass(frozen=True)
class Admitted:
    """A request that may run: its function, route values and URL parts."""

    function: HttpFunction
    route_values: dict[str, str]
    method: str
    raw_url: str
    query: str
    headers: dict[str, str]


class HttpHost:
    def __init__(
        self,
        index: FunctionIndex,
        *,
        host: str = "127.0.0.1",
        port: int = 7071,
        route_prefix: str = "api",
        keys: HostKeys | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.index = index
        self.route_prefix = route_prefix.strip("/")
        self.keys = keys or HostKeys.single(new_key())
        self.max_body_bytes = max_body_bytes
        self._server = BoundedHTTPServer((host, port), self)
        self._serving = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def host_key(self) -> str:
        """The key to send in ``x-functions-key`` (or ``?code=``) to a function-level route."""
        return self.keys.default

    def start(self) -> HttpHost:
        self._serving = True
        threading.Thread(target=self._server.serve_forever, name="http-host", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._serving:
            self._server.shutdown()
            self._serving = False
        self._server.server_close()

    def handle(self, method: str, raw_url: str, headers: dict[str, str], body: bytes) -> func.HttpResponse:
        """One request whose body is already in memory (the socket handler reads it only after
        ``route`` admitted the request)."""
        routed = self.route(method, raw_url, headers)
        if isinstance(routed, func.HttpResponse):
            return routed
        if len(body) > self.max_body_bytes:
            return self.too_large()
        return self.invoke(routed, body)

    def route(self, method: str, raw_url: str, headers: dict[str, str]) -> Admitted | func.HttpResponse:
        parts = urlsplit(raw_url)
        path = decode_path(parts.path)
        prefix = f"/{self.route_prefix}/" if self.route_prefix else "/"
        if not path.lower().startswith(prefix.lower()):
            return func.HttpResponse(status_code=404)
        matched = self.index.match(method, path[len(prefix) :])
        if matched is None:
            return func.HttpResponse(status_code=404)
        if isinstance(matched, frozenset):
            return func.HttpResponse(status_code=405, headers={"Allow": ", ".join(sorted(matched))})
        function, route_values = matched
        if not self.keys.allows(function.auth_level, headers, parts.query):
            return func.HttpResponse(status_code=401)
        return Admitted(function, route_values, method, raw_url, parts.query, headers)

    def too_large(self) -> func.HttpResponse:
        return func.HttpResponse(status_code=413)

    def invoke(self, admitted: Admitted, body: bytes) -> func.HttpResponse:
        function = admitted.function
        params = {k: v[-1] for k, v in parse_qs(admitted.query).items()}
        request = func.HttpRequest(
            method=admitted.method,
            url=f"{self.base_url}{admitted.raw_url}",
            headers=admitted.headers,
            params=params,
            route_params=admitted.route_values,
            body=body,
        )
        invocation_id = str(uuid.uuid4())
        log.info(
            "Executing 'Functions.%s' (Reason='This function was programmatically called via the host APIs.', Id=%s)",
            function.name,
            invocation_id,
        )
        started = time.perf_counter()
        try:
            response = function.call(
                **arguments(
                    function.call,
                    function.argument,
                    request,
                    function_name=function.name,
                    invocation_id=invocation_id,
                    headers=admitted.headers,
                )
            )
        except Exception as error:  # the host answers 500 to an unhandled exception
            invocation_log(function.name, started, invocation_id, error)
            return func.HttpResponse("Internal Server Error", status_code=500)
        invocation_log(function.name, started, invocation_id, None)
        return cast(func.HttpResponse, response)
