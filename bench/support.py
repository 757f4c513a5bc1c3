"""What every benchmark shares: the figures it reports, the infrastructure it runs against (Azurite,
loopback receivers in their own processes, routes files) and fresh-interpreter runs of bench/worker.py.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.support.azureml_fake import AzureMLFake
    from tests.support.keyless import KeylessStorage

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "bench" / "worker.py"
RECEIVER = ROOT / "bench" / "receiver.py"
SAMPLE_EVENT = ROOT / "tests" / "events" / "eventgrid" / "run_status_changed_failed.json"


@dataclass
class Figure:
    """One row of the results table: the app's figure against its baseline, from the same run."""

    benchmark: str
    measure: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.baseline else None

    def cells(self) -> list[str]:
        baseline = f"{_number(self.baseline)} {self.unit} ({self.baseline_label})" if self.baseline else "—"
        ratio = f"{self.ratio:.2f}×" if self.ratio is not None else "—"
        met = "—" if self.met is None else "yes" if self.met else "**no**"
        return [self.benchmark, self.measure, f"{_number(self.value)} {self.unit}", baseline, ratio, self.target, met,
                self.note]  # fmt: skip


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def event_with_id(template: dict[str, Any], event_id: str | None = None, **data: Any) -> dict[str, Any]:
    """A copy of a sample event with its own id (the ledger would skip a repeated one)."""
    return {**template, "id": event_id or str(uuid.uuid4()), "data": {**template["data"], **data}}


def sample_event() -> dict[str, Any]:
    return json.loads(SAMPLE_EVENT.read_text())[0]


class ReceiverProcess:
    """A loopback webhook receiver in its own process, so it does not compete for the app's GIL."""

    def __init__(self, delay: float = 0.0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(RECEIVER), str(delay)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise RuntimeError(f"the receiver did not start: {self.url!r}")

    def _ask(self, command: str) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def stats(self) -> dict[str, Any]:
        """{"requests": n, "keys": distinct Idempotency-Keys, "repeated": keys received more than once}."""
        return self._ask("stats")

    def reset(self) -> None:
        self._ask("reset")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@dataclass
class Lab:
    """Infrastructure shared by the benchmarks of one run, started on first use and stopped at the end."""

    quick: bool = False
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="aml-bench-")))
    _azurite: Any = None
    _azureml: AzureMLFake | None = None
    _keyless: KeylessStorage | None = None
    _receivers: dict[float, ReceiverProcess] = field(default_factory=dict)

    def count(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    @property
    def azurite(self) -> str:
        """The connection string of the Azurite CI started (AZURITE_CONNECTION_STRING), or of our own."""
        if os.environ.get("AZURITE_CONNECTION_STRING"):
            return os.environ["AZURITE_CONNECTION_STRING"]
        if self._azurite is None:
            from scripts import azurite

            self._azurite = azurite.start()
        return self._azurite.connection_string

    def azureml(self) -> AzureMLFake:
        """The local Azure ML REST fake (tests/support/azureml_fake.py), served from this process."""
        if self._azureml is None:
            from tests.support.azureml_fake import AzureMLFake

            self._azureml = AzureMLFake()
        return self._azureml

    def keyless(self) -> KeylessStorage:
        """Storage as deployed, without keys (tests/support/keyless.py): Azurite over HTTPS checking the
        OAuth tokens that a local managed-identity endpoint, served from this process, issues."""
        if self._keyless is None:
            from tests.support.keyless import KeylessStorage

            self._keyless = KeylessStorage.start()
        return self._keyless

    def receiver(self, delay: float = 0.0) -> ReceiverProcess:
        if delay not in self._receivers:
            self._receivers[delay] = ReceiverProcess(delay)
        return self._receivers[delay]

    def app_settings(self, routes: str, *, keyless: bool = False, **settings: str) -> dict[str, str]:
        """App settings for a worker: this run's Azurite (by connection string, or `keyless` as deployed),
        tables of its own and the given routes."""
        suffix = uuid.uuid4().hex[:10]
        path = self.directory / f"routes-{suffix}.yaml"
        path.write_text(routes)
        storage = self.keyless().app_settings() if keyless else {"AzureWebJobsStorage": self.azurite}
        return {
            **storage, "LEDGER_TABLE": f"ledger{suffix}", "REJECTED_TABLE": f"rejected{suffix}",
            "ROUTES_FILE": str(path), **settings,
        }  # fmt: skip

    def close(self) -> None:
        for receiver in self._receivers.values():
            receiver.close()
        if self._azurite is not None:
            self._azurite.stop()
        if self._azureml is not None:
            self._azureml.close()
        if self._keyless is not None:
            self._keyless.close()


def app_engine(settings: dict[str, str], *, dry_run: bool = False) -> Any:
    """The engine a worker builds from these app settings (dry run: no ledger), for in-process benchmarks."""
    from shared.ledger.memory import MemoryLedger
    from shared.ledger.table import TableLedger
    from shared.pipeline.engine import Engine
    from shared.settings import Settings
    from shared.worker import routes_for

    app = Settings.from_environ({**os.environ, **settings})
    ledger = MemoryLedger() if dry_run else TableLedger(app)
    return Engine(app, lambda: routes_for(app.routes_file, app.environ), ledger, dry_run=dry_run)


@contextmanager
def worker_engine(engine: Any) -> Iterator[None]:
    """Make `engine` the one this process's functions hand their events to."""
    from shared import worker

    worker.use_engine(engine)
    try:
        yield
    finally:
        worker.use_engine(None)


def compile_sources() -> None:
    """Byte-compile the repository's Python (the app, the baseline app, the worker and its helpers), as
    a warm-up run would if PYTHONDONTWRITEBYTECODE (set on some machines) did not stop it: otherwise each
    fresh worker compiles whichever modules have no current bytecode, and the figure depends on that."""
    import compileall

    compileall.compile_file(ROOT / "function_app.py", quiet=1)
    for package in ("shared", "handlers", "bench", "scripts"):
        compileall.compile_dir(ROOT / package, quiet=1)


def run_worker(*args: str, settings: dict[str, str] | None = None, timeout: float = 300) -> dict[str, Any]:
    """Run bench/worker.py in a fresh interpreter (as a new Functions worker) and return its JSON."""
    env = {**os.environ, **(settings or {})}
    result = subprocess.run(
        [sys.executable, str(WORKER), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench/worker.py {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def ledger_statuses(settings: dict[str, str]) -> dict[str, int]:
    """How many ledger records of a run have each status (read straight from the table)."""
    from azure.data.tables import TableServiceClient

    table = TableServiceClient.from_connection_string(settings["AzureWebJobsStorage"]).get_table_client(
        settings["LEDGER_TABLE"]
    )
    counts: dict[str, int] = {}
    for entity in table.list_entities(select=["status"]):
        counts[entity["status"]] = counts.get(entity["status"], 0) + 1
    return counts
