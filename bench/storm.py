"""5. Storm: a sweep's 500 child runs change status at once. Each storm goes to a fresh worker: the 500
RunStatusChanged events, plus 50 of them delivered a second time (Event Grid delivers at least once),
with a `log` and a `webhook` action per event, delivered through azure-functions' converter on a thread
pool of PYTHON_THREADPOOL_THREAD_COUNT threads, as the Python worker runs sync functions.

Four storms in one run: receivers answering after 200 ms and instant receivers, each with the thread
count infra deploys and with the worker's default, min(32, cores + 4). Instant receivers make the storm
CPU-bound: the better of the two is the limit. With slow receivers, a pool too small to cover their wait
bounds the throughput instead. Target: with the deployed count, at least 0.8× the limit. The instant storms
are also set against each other: what the larger pool costs when it cannot help. Every storm also
checks that no action was lost or repeated: the receiver counts Idempotency-Keys, the ledger counts records.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass

from bench.support import (
    ROOT,
    Figure,
    Lab,
    event_with_id,
    ledger_statuses,
    median,
    percentile,
    run_worker,
    sample_event,
)
from bench.worker import default_pool_threads

SLOW_SECONDS, SHARE_OF_LIMIT = 0.2, 0.8
INFRA = ROOT / "infra" / "app" / "function-app.bicep"
ROUTES = """
routes:
  - name: sweep
    events: [RunStatusChanged]
    actions:
      - log: {}
      - webhook: {url: "${HOOK_URL}/sweep", allow_private: true}
"""


def deployed_threads() -> int:
    """The PYTHON_THREADPOOL_THREAD_COUNT that infra sets, so the benchmark measures what is deployed."""
    found = re.search(r"PYTHON_THREADPOOL_THREAD_COUNT:\s*'(\d+)'", INFRA.read_text())
    if found is None:
        raise RuntimeError(f"{INFRA.relative_to(ROOT)} sets no PYTHON_THREADPOOL_THREAD_COUNT")
    return int(found.group(1))


@dataclass
class Storm:
    threads: int
    delay: float
    rate: float  # deliveries per second
    p50_ms: float
    p99_ms: float
    peak_rss_mib: float
    cpu_ms: float  # the worker's CPU time per delivery
    exact: bool
    note: str

    def figure(self, pool: str, baseline: Storm | None = None, baseline_is: str = "") -> Figure:
        receivers = f"receivers answering after {self.delay * 1000:.0f} ms" if self.delay else "instant receivers"
        result = Figure(
            "5 storm", f"{receivers}, {self.threads} threads ({pool}): throughput", self.rate, "events/s",
            target="no loss, no repeat", met=self.exact,
            note=f"latency p50 {self.p50_ms:.0f} ms, p99 {self.p99_ms:.0f} ms; worker CPU {self.cpu_ms:.1f} ms a "
            f"delivery; peak RSS {self.peak_rss_mib:.0f} MiB; {self.note}",
        )  # fmt: skip
        if baseline is not None:
            result.baseline = baseline.rate
            result.baseline_label = f"instant receivers, {baseline.threads} threads: {baseline_is}"
        return result


def storm(lab: Lab, threads: int, delay: float, children: int, repeats: int) -> Storm:
    receiver = lab.receiver(delay)
    settings = lab.app_settings(ROUTES, HOOK_URL=receiver.url, PYTHON_THREADPOOL_THREAD_COUNT=str(threads))
    template = sample_event()
    sweep = [
        event_with_id(template, runId=f"sweep_1717000500_{i:04d}", runStatus=random.choice(["Completed", "Failed"]))
        for i in range(children)
    ]
    deliveries = sweep + random.sample(sweep, repeats)
    random.shuffle(deliveries)
    warm_up = event_with_id(template, runId="warm-up")
    path = lab.directory / f"storm-{threads}-{delay}.json"
    path.write_text(json.dumps([warm_up, *deliveries]))
    receiver.reset()
    result = run_worker("storm", str(path), settings=settings)
    received = receiver.stats()
    ledger = ledger_statuses(settings)
    latencies = [latency * 1000 for latency in result["latencies"]]
    exact = (
        not result["errors"] and received["keys"] == children + 1 and received["repeated"] == 0
        and ledger == {"done": 2 * (children + 1)}
    )  # fmt: skip
    note = (
        f"{received['keys']} of {children + 1} events posted once each, ledger {ledger}, "
        f"{result['redelivered']} deliveries raised and were redelivered"
        if exact
        else f"LOSS OR REPEAT: receiver {received}, ledger {ledger}, errors {result['errors'][:3]}"
    )
    return Storm(threads, delay, len(deliveries) / result["seconds"], median(latencies),
                 percentile(latencies, 0.99), result["peak_rss_mib"],
                 result["cpu_seconds"] * 1000 / len(deliveries), exact, note)  # fmt: skip


def run(lab: Lab) -> list[Figure]:
    children, repeats = lab.count(500, 30), lab.count(50, 3)
    deployed, default = deployed_threads(), default_pool_threads()
    # The first storm of a run measured up to 2× slower than the same storm after it (Azurite warming up,
    # most likely): one storm goes unmeasured first.
    storm(lab, deployed, 0.0, lab.count(100, 5), 0)
    # Each slow storm runs next to its instant one; the instant storms bracket the slow ones.
    instant_deployed = storm(lab, deployed, 0.0, children, repeats)
    slow_deployed = storm(lab, deployed, SLOW_SECONDS, children, repeats)
    slow_default = storm(lab, default, SLOW_SECONDS, children, repeats)
    instant_default = storm(lab, default, 0.0, children, repeats)
    limit = max(instant_deployed, instant_default, key=lambda result: result.rate)
    deployed_pool, default_pool, limit_is = "deployed", "the worker's default", "the CPU-bound limit"
    slow = slow_deployed.figure(deployed_pool, limit, limit_is)
    slow.measure = f"{children} events + {repeats} redeliveries, {slow.measure}"
    slow.target = f"≥ {SHARE_OF_LIMIT}×, no loss, no repeat"
    slow.met = slow_deployed.exact and slow.ratio >= SHARE_OF_LIMIT
    return [
        slow,
        slow_default.figure(default_pool, limit, limit_is),
        # What the larger pool costs where it cannot help: every storm CPU-bound.
        instant_deployed.figure(deployed_pool, instant_default, "the default pool"),
        instant_default.figure(default_pool),
    ]
