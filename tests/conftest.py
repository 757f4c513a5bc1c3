"""Shared fixtures: a real Azurite for the ledger, real local HTTP receivers, and the app's own
function index (`app.get_functions()`), so tests drive the functions as the host would."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts import azurite as azurite_tool
from scripts.local_host import indexed_functions
from shared import worker
from shared.settings import current_settings
from tests.support.azureml_fake import AzureMLFake
from tests.support.delivery import Delivery, deliver_event
from tests.support.receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent
# Scripts and fresh interpreters the tests start import this checkout's code, whichever checkout the
# .venv's path file (scripts/setup_env.sh) names.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


@pytest.fixture(scope="session")
def azurite() -> Iterator[str]:
    """A connection string: the Azurite `.ci/run` started (AZURITE_CONNECTION_STRING), or our own."""
    if os.environ.get("AZURITE_CONNECTION_STRING"):
        yield os.environ["AZURITE_CONNECTION_STRING"]
        return
    running = azurite_tool.start()
    try:
        yield running.connection_string
    finally:
        running.stop()


@pytest.fixture
def app_env(azurite: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Point the app at Azurite with tables of its own and at a routes file the test writes.

    Returns `write_routes(yaml_text, **settings)`, which also rebuilds the worker's engine."""
    suffix = uuid.uuid4().hex[:10]
    monkeypatch.setenv("AzureWebJobsStorage", azurite)
    monkeypatch.setenv("LEDGER_TABLE", f"ledger{suffix}")
    monkeypatch.setenv("REJECTED_TABLE", f"rejected{suffix}")
    monkeypatch.setenv("REJECTED_CONTAINER", f"rejected{suffix}")  # no test reads a payload another stored
    monkeypatch.setenv("INVOCATION_BUDGET_SECONDS", "10")

    def write_routes(text: str, **settings: str) -> Path:
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        path = tmp_path / f"routes-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(text)
        monkeypatch.setenv("ROUTES_FILE", str(path))
        current_settings.cache_clear()
        worker.use_engine(None)
        return path

    yield write_routes
    current_settings.cache_clear()
    worker.use_engine(None)


@pytest.fixture
def noise_env(app_env: Callable[..., Path], tmp_path: Path) -> Callable[..., Path]:
    """app_env with tables of the test's own for groups, silences and repeat counters (read at once)."""
    suffix = uuid.uuid4().hex[:8]

    def write_routes(text: str, **settings: str) -> Path:
        return app_env(text, DIGEST_TABLE=f"digests{suffix}", SILENCE_TABLE=f"silences{suffix}",
                       GUARDRAIL_TABLE=f"guardrails{suffix}", SILENCE_CACHE_SECONDS="0",
                       EMAIL_OUTBOX=str(tmp_path / "outbox"), **settings)  # fmt: skip

    return write_routes


@pytest.fixture(scope="module")
def fake() -> Iterator[AzureMLFake]:
    """The local HTTPS Azure ML (tests/support/azureml_fake.py), one per test module."""
    server = AzureMLFake()
    yield server
    server.close()


@pytest.fixture
def use_fake(fake: AzureMLFake, monkeypatch: pytest.MonkeyPatch) -> Iterator[AzureMLFake]:
    """The fake, emptied, with every Azure ML call of the app (actions, enrichment) pointed at it."""
    from handlers.azureml import client as azureml

    fake.reset()
    # MLClient records the cloud it was built for in the process environment: restored after the test.
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", os.environ.get("AZUREML_CURRENT_CLOUD", "AzureCloud"))
    azureml.use_connection(fake.connection())
    yield fake
    azureml.use_connection(None)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


@pytest.fixture(scope="session")
def functions() -> dict[str, Callable[[Any], None]]:
    return indexed_functions()


@pytest.fixture
def deliver(functions: dict[str, Callable[[Any], None]]) -> Callable[[str, dict[str, Any]], Delivery]:
    """Deliver one JSON event to a function as the host would, and collect what it reported."""

    def run(function: str, event: dict[str, Any]) -> Delivery:
        return deliver_event(functions, function, event)

    return run
