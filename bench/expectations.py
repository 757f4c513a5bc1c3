"""7. Expectations: one run of the `check_expectations` timer with 10,000 open expectations of which 10
are due, against the same timer with 10 open in all (both fire the 10 due ones through a `log` action,
gate and ledger included). The store indexes expectations by the minute they fall due and the timer
reads only the minutes that have passed, so it should read the 10 due rows, not the 10,000 open ones:
target ≤ 1.5×. Rounds alternate between the two tables; each figure is the median over rounds."""

from __future__ import annotations

import copy
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.support import Figure, Lab, median, sample_event

MAX_RATIO = 1.5
DUE = 10
ROUTES = """
routes:
  - name: stuck-runs
    events: [RunStatusChanged]
    when: {data.RunStatus: Running}
    expect: {within: 1h, event: {events: [RunCompleted]}, same: [data.RunId]}
    actions: [log]
  - name: long-queues
    events: [RunStatusChanged]
    when: {data.RunStatus: Queued}
    expect: {within: 30d, event: {events: [RunCompleted]}, same: [data.RunId]}
    actions: [log]
"""
START = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def timer_engine(settings: dict[str, str]) -> Any:
    """The engine a worker builds (ledger, gate, expectation store) from these app settings."""
    from shared.ledger.table import TableLedger
    from shared.noise.expectations import ExpectationStore
    from shared.noise.gate import Gate
    from shared.pipeline.engine import Engine
    from shared.settings import Settings
    from shared.worker import routes_for

    app = Settings.from_environ({**os.environ, **settings})
    return Engine(app, lambda: routes_for(app.routes_file, app.environ), TableLedger(app), gate=Gate(app),
                  expectations=ExpectationStore(app))  # fmt: skip


def open_many(engine: Any, route: str, status: str, count: int, at: datetime) -> None:
    """`count` expectations of `route`, opened as of `at` (through the store, eight at a time)."""
    from shared.events.parse import parse_event
    from shared.platform.clock import frozen_at

    spec = engine.routes().route(route).expect
    template = sample_event()

    def one(number: int) -> None:
        raw = copy.deepcopy(template)
        raw["id"] = str(uuid.uuid4())
        raw["data"].update(runId=f"{route}-{uuid.uuid4().hex[:12]}-{number}", runStatus=status)
        engine.expectations.open(route, spec, parse_event(raw))

    with frozen_at(at), ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))


def tick_ms(engine: Any, at: datetime) -> tuple[float, int, int]:
    """(milliseconds of one timer run as of `at`, actions done, due rows it read)."""
    from shared.platform.clock import frozen_at

    with frozen_at(at):
        rows = len(engine.expectations.due())
        started = time.perf_counter()
        reports = engine.check_expectations()
        elapsed = (time.perf_counter() - started) * 1000
    return elapsed, sum(report.status == "done" for report in reports), rows


def run(lab: Lab) -> list[Figure]:
    background, rounds = lab.count(10_000, 200) - DUE, lab.count(7, 2)
    engines = {name: timer_engine(lab.app_settings(ROUTES, EXPECT_TABLE=f"expect{uuid.uuid4().hex[:10]}",
                                                   SILENCE_TABLE=f"silences{uuid.uuid4().hex[:10]}"))
               for name in ("few", "many")}  # fmt: skip
    started = time.monotonic()
    open_many(engines["many"], "long-queues", "Queued", background, START)
    fill_seconds = time.monotonic() - started
    timings: dict[str, list[float]] = {"few": [], "many": []}
    exact, rows_read = True, {"few": 0, "many": 0}
    for number in range(rounds + 1):  # round 0 warms both up (tables created, clients connected)
        opened = START + timedelta(hours=2 * number)
        order = ("few", "many") if number % 2 else ("many", "few")
        for name in order:
            open_many(engines[name], "stuck-runs", "Running", DUE, opened)
        for name in order:
            elapsed, done, rows = tick_ms(engines[name], opened + timedelta(hours=1, minutes=1))
            exact = exact and done == DUE
            if number:
                timings[name].append(elapsed)
                rows_read[name] = max(rows_read[name], rows)
    few, many = median(timings["few"]), median(timings["many"])
    ratio = many / few
    note = (f"due rows read per run: {rows_read['many']} ({background + DUE} open) vs {rows_read['few']} ({DUE} open); "
            f"{'each run fired the 10 due' if exact else 'A RUN DID NOT FIRE EXACTLY THE 10 DUE'}; "
            f"opening {background} took {fill_seconds:.0f} s")  # fmt: skip
    return [
        Figure(
            "7 expectations",
            f"timer run, {background + DUE} open of which {DUE} due",
            many,
            "ms",
            baseline=few,
            baseline_label=f"{DUE} open in all",
            target=f"≤ {MAX_RATIO}×",
            met=exact and ratio <= MAX_RATIO,
            note=note,
        ),
    ]
