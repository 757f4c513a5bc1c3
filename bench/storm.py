"""5. Storm: a sweep's 500 child runs change status at once. A fresh worker gets the 500
RunStatusChanged events, plus 50 of them delivered a second time (Event Grid delivers at least once),
from a thread pool of the host's default size, with a `log` and a `webhook` action per event.
Reports throughput, latency percentiles and peak memory, and checks that no action was lost or
repeated: the receiver counts Idempotency-Keys, the ledger counts records."""

from __future__ import annotations

import json
import os
import random

from bench.support import Figure, Lab, event_with_id, ledger_statuses, median, percentile, run_worker, sample_event

ROUTES = """
routes:
  - name: sweep
    events: [RunStatusChanged]
    actions:
      - log: {}
      - webhook: {url: "${HOOK_URL}/sweep", allow_private: true}
"""


def run(lab: Lab) -> list[Figure]:
    children, repeats = lab.count(500, 30), lab.count(50, 3)
    threads = min(32, (os.cpu_count() or 1) + 4)  # the Python worker's default PYTHON_THREADPOOL_THREAD_COUNT
    receiver = lab.receiver()
    settings = lab.app_settings(ROUTES, HOOK_URL=receiver.url)
    template = sample_event()
    sweep = [
        event_with_id(template, runId=f"sweep_1717000500_{i:04d}", runStatus=random.choice(["Completed", "Failed"]))
        for i in range(children)
    ]
    deliveries = sweep + random.sample(sweep, repeats)
    random.shuffle(deliveries)
    warm_up = event_with_id(template, runId="warm-up")
    path = lab.directory / "storm.json"
    path.write_text(json.dumps([warm_up, *deliveries]))
    receiver.reset()
    result = run_worker("storm", str(path), "--threads", str(threads), settings=settings)
    received = receiver.stats()
    ledger = ledger_statuses(settings)
    latencies = [latency * 1000 for latency in result["latencies"]]
    expected_actions = 2 * (children + 1)
    exact = (
        not result["errors"] and received["keys"] == children + 1 and received["repeated"] == 0
        and ledger == {"done": expected_actions}
    )  # fmt: skip
    note = (
        f"{received['keys']} of {children + 1} events posted once each, ledger {ledger}, "
        f"{result['redelivered']} deliveries raised and were redelivered"
        if exact
        else f"LOSS OR REPEAT: receiver {received}, ledger {ledger}, errors {result['errors'][:3]}"
    )
    rate = len(deliveries) / result["seconds"]
    return [
        Figure("5 storm", f"{children} events + {repeats} redeliveries, {threads} threads: throughput",
               rate, "events/s", target="no loss, no repeat", met=exact, note=note),
        Figure("5 storm", "latency per delivery, p50", median(latencies), "ms"),
        Figure("5 storm", "latency per delivery, p99", percentile(latencies, 0.99), "ms"),
        Figure("5 storm", "peak RSS of the worker", result["peak_rss_mib"], "MiB"),
    ]  # fmt: skip
