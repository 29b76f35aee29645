"""Route templates, path decoding and key resolution of the local host, without sockets."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from local_runner.keys import KEY_FILE, HostKeys, local_host_key, presented_key
from local_runner.routing import Route, decode_path


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        (
            "/api/organizers/adele.vance%40contoso.com/cancellations",
            "/api/organizers/adele.vance@contoso.com/cancellations",
        ),
        ("/api/x/a%2Fb%2fc", "/api/x/a%2Fb%2fc"),
        ("/api/x/%252F", "/api/x/%2F"),
        ("/api/x/%E2%82%AC%20", "/api/x/€ "),
        ("/api/x/%FF%FE", "/api/x/%FF%FE"),
        ("/api/x/%zz%4", "/api/x/%zz%4"),
    ],
)
def test_decode_path(raw: str, decoded: str) -> None:
    assert decode_path(raw) == decoded


def test_route_templates() -> None:
    assert Route.parse("cancellations/{id}").match("Cancellations/abc") == {"id": "abc"}
    assert Route.parse("cancellations/{id}").match("cancellations/a%2Fb/") == {"id": "a%2Fb"}
    assert Route.parse("cancellations/{id}").match("cancellations/a/b") is None
    assert Route.parse("items/{id:int}").match("items/12") == {"id": "12"}
    assert Route.parse("items/{id:int}").match("items/twelve") is None
    assert Route.parse("items/{id?}").match("items") == {}
    assert Route.parse("files/{*path}").match("files/a/b/c") == {"path": "a/b/c"}


@pytest.mark.parametrize("template", ["items/{id:regex(^a$)}", "items/x{id}", "{*rest}/tail"])
def test_unsupported_templates_stop_start_up(template: str) -> None:
    with pytest.raises(ValueError, match="route"):
        Route.parse(template)


def test_presented_key_prefers_the_header_even_when_empty() -> None:
    assert presented_key({"X-Functions-Key": "h"}, "code=q") == "h"
    assert presented_key({"x-functions-key": ""}, "code=q") == ""
    assert presented_key({}, "a=1&Code=q&code=r") == "q"
    assert presented_key({}, "a=1") is None


def test_key_levels() -> None:
    keys = HostKeys(master_key="m", function_keys={"default": "f", "other": "g"})
    assert [keys.level_of(k) for k in ("m", "f", "g", "F", "", None)] == [
        "admin",
        "function",
        "function",
        "anonymous",
        "anonymous",
        "anonymous",
    ]


def test_the_local_key_is_the_setting_or_a_fresh_private_file(tmp_path: Path) -> None:
    first, written = local_host_key({}, tmp_path)
    second, _ = local_host_key({}, tmp_path)
    assert written == tmp_path / KEY_FILE
    assert first != second
    assert (tmp_path / KEY_FILE).read_text().strip() == second
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    assert local_host_key({"LOCAL_HOST_KEY": "chosen"}, tmp_path) == ("chosen", None)
    assert not (tmp_path / KEY_FILE).exists()  # a stale key file would name a key that no longer works
