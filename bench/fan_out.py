"""4. Fan-out: one event, a route with 5 webhook actions, every receiver answering after 200 ms, in a
warm worker with the ledger on Azurite; against the same event with a single such action."""

from __future__ import annotations

import json
import time

from bench.support import Figure, Lab, app_engine, event_with_id, median, sample_event, worker_engine

TARGET, ACTIONS, DELAY = 1.3, 5, 0.2


def routes(actions: int) -> str:
    hooks = "\n".join(
        f'      - webhook: {{url: "${{HOOK_URL}}/fan-out/{i}", allow_private: true}}' for i in range(actions)
    )
    return f"routes:\n  - name: fan-out\n    events: [RunStatusChanged]\n    actions:\n{hooks}\n"


def run(lab: Lab) -> list[Figure]:
    from scripts.local_host import binding_for, indexed_functions

    function = indexed_functions()["run_events"]
    receiver = lab.receiver(DELAY)
    repetitions = lab.count(7, 1)
    template = sample_event()

    def event_seconds(actions: int) -> float:
        with worker_engine(app_engine(lab.app_settings(routes(actions), HOOK_URL=receiver.url))):
            function(binding_for(event_with_id(template)))  # warm-up: tables, connections, routes
            timings = []
            for _ in range(repetitions):
                binding = binding_for(json.loads(json.dumps(event_with_id(template))))
                started = time.perf_counter()
                function(binding)
                timings.append(time.perf_counter() - started)
            return median(timings)

    single, fanned = event_seconds(1), event_seconds(ACTIONS)
    figure = Figure(
        "4 fan-out", f"one event, {ACTIONS} webhooks answering after {DELAY * 1000:.0f} ms; median of {repetitions}",
        fanned * 1000, "ms", single * 1000, "the same with 1 webhook", f"≤ {TARGET}×",
    )  # fmt: skip
    figure.met = figure.ratio <= TARGET
    return [figure]
