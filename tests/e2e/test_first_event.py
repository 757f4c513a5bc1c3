"""A worker's first event loads only what its routes need (bench/first_event.py measures the cost).

A fresh interpreter indexes the app and hands it one event, as the Functions host does, and we look
at what it imported: groups, mute windows (zoneinfo) and Jinja2 load only for routes that use them,
and the Table Storage client speaks httpx (shared/platform/table_transport.py), not requests. Also here: the
TLS context every client shares, the transport's error mapping, and the libyaml routes loader.
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.core.exceptions import ServiceRequestError, ServiceResponseTimeoutError
from azure.core.rest import HttpRequest

from shared.platform import tls
from shared.platform.table_transport import TableTransport
from shared.routing import yamlsource
from tests.support.fresh_worker import NEVER_HERE, PLAIN_ROUTES, first_event

ROOT = Path(__file__).resolve().parents[2]

# Loaded on first use only: by routes with `group:` (digests) or `mute:` (mute windows, zoneinfo).
GROUP_AND_MUTE_MODULES = {"shared.noise.digests", "shared.events.digest", "shared.routing.mutes", "zoneinfo"}


def test_a_first_event_loads_no_group_mute_template_or_requests_module(azurite: str, tmp_path: Path) -> None:
    seen = first_event(azurite, tmp_path, PLAIN_ROUTES)
    assert seen["outcomes"] == ["action done"]
    modules = set(seen["modules"])
    assert {
        "shared.worker",
        "shared.pipeline.engine",
        "shared.noise.gate",
        "shared.noise.silences",
        "httpx",
        "azure.data.tables",
    } <= modules
    assert not modules & (GROUP_AND_MUTE_MODULES | NEVER_HERE)


def test_routes_with_group_and_mute_load_them_on_first_use(azurite: str, tmp_path: Path) -> None:
    routes = """
routes:
  - name: muted
    events: [RunStatusChanged]
    mute: [{days: [mon-sun]}]
    actions: [log]
  - name: grouped
    events: [RunStatusChanged]
    group: {by: [data.ExperimentName], wait: 10m}
    actions: [log]
"""
    seen = first_event(azurite, tmp_path, routes)
    assert sorted(seen["outcomes"]) == ["action grouped", "action skipped"]
    assert set(seen["modules"]) >= GROUP_AND_MUTE_MODULES


# ---- the TLS context the clients share -----------------------------------------------------------


def test_a_worker_loads_the_ca_certificates_once_for_all_its_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    from handlers.common import http

    loads: list[int] = []
    real = ssl.create_default_context
    monkeypatch.setattr(ssl, "create_default_context", lambda *args, **kwargs: loads.append(1) or real(*args, **kwargs))
    monkeypatch.setattr(tls, "_context", None)  # a fresh worker's
    monkeypatch.setattr(http, "_client", None)
    tls.load_in_background()  # as the first event does, while the engine imports
    contexts: list[ssl.SSLContext] = []
    threads = [threading.Thread(target=lambda: contexts.append(tls.tls_context())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    TableTransport(connection_timeout=1, read_timeout=1)
    http.client()
    assert len({id(context) for context in contexts}) == 1
    assert len(loads) == 1


# ---- the Table Storage transport: errors as the SDK expects them ----------------------------------


def test_a_storage_that_never_answers_is_a_response_timeout_after_read_timeout(silent_server: str) -> None:
    transport = TableTransport(connection_timeout=1, read_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(ServiceResponseTimeoutError):
        transport.send(HttpRequest("GET", f"{silent_server}/Tables"))
    assert 0.25 < time.monotonic() - started < 2


def test_a_refused_connection_is_a_request_error_the_sdk_may_retry() -> None:
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]  # closed again below: nothing listens there
    transport = TableTransport(connection_timeout=1, read_timeout=1)
    with pytest.raises(ServiceRequestError):
        transport.send(HttpRequest("GET", f"http://127.0.0.1:{port}/Tables"))


# ---- routes.yaml on libyaml ---------------------------------------------------------------------------


def lines_of(node: Any) -> Any:
    """Every line number a loaded document carries, in its shape."""
    if isinstance(node, yamlsource.LineDict):
        return (node.line, node.key_lines, {key: lines_of(value) for key, value in node.items()})
    if isinstance(node, yamlsource.LineList):
        return (node.line, node.item_lines, [lines_of(item) for item in node])
    return node


def test_the_libyaml_loader_reads_what_the_python_loader_reads_with_the_same_lines() -> None:
    text = (ROOT / "routes.yaml").read_text()
    assert yamlsource._FastLineLoader.__mro__[1] is yaml.CSafeLoader  # PyYAML's wheels ship libyaml
    fast = yaml.load(text, Loader=yamlsource._FastLineLoader)  # noqa: S506 (a SafeLoader)
    assert fast == yaml.load(text, Loader=yamlsource._LineLoader)  # noqa: S506
    assert lines_of(fast) == lines_of(yaml.load(text, Loader=yamlsource._LineLoader))  # noqa: S506


def test_a_syntax_error_is_worded_by_the_python_parser() -> None:
    with pytest.raises(yaml.YAMLError) as raised:
        yamlsource.load_yaml("routes:\n\t- name: a\n")
    assert "found character '\\t' that cannot start any token" in str(raised.value)
    assert raised.value.problem_mark.line + 1 == 2  # type: ignore[attr-defined]


def test_the_worker_s_table_clients_send_through_the_httpx_transport(azurite: str, monkeypatch) -> None:
    from shared.platform import storage
    from shared.settings import Settings

    monkeypatch.setattr(storage, "_clients", {})
    service = storage.table_service(Settings.from_environ({"AzureWebJobsStorage": azurite}))
    assert isinstance(service._client._client._pipeline._transport, TableTransport)


def test_storage_falls_back_to_the_sdk_transport_when_azure_core_moves_what_ours_builds_on(
    azurite: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from azure.core.pipeline.transport import RequestsTransport

    from shared.platform import storage
    from shared.settings import Settings

    monkeypatch.setattr(storage, "_clients", {})
    monkeypatch.setitem(sys.modules, "shared.platform.table_transport", None)  # its import now raises ImportError
    service = storage.table_service(Settings.from_environ({"AzureWebJobsStorage": azurite}))
    assert isinstance(service._client._client._pipeline._transport, RequestsTransport)
    assert "falls back to the SDK's default HTTP transport" in caplog.text
    table = service.create_table_if_not_exists(f"fallback{uuid.uuid4().hex[:8]}")  # Azurite answers through it
    table.create_entity({"PartitionKey": "p", "RowKey": "r"})
    assert table.get_entity("p", "r")["RowKey"] == "r"
