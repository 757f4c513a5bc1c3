"""One Functions worker for the benchmarks that need a fresh interpreter: `python bench/worker.py SCENARIO`.

The clock starts at this file's first line, so the figures exclude only the interpreter's own start
(the same for the app and its baseline). Each scenario prints one JSON line; bench/support.py runs it.

  index [--baseline]                   import the app and index it (app.get_functions())
  first-event [--baseline] EVENT       ... then hand it one event, as the host would
  storm EVENTS                         ... then deliver a list of events on a thread pool of
                                       PYTHON_THREADPOOL_THREAD_COUNT threads, as the worker runs sync functions
  memory [EVENTS --azureml URL CA]     ... then the sample events, then EVENTS with Azure ML at a fake
"""

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from collections import Counter  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def indexed(baseline: bool) -> dict[str, Any]:
    """The functions of the app (or of the baseline app) from its own index, as the host builds it."""
    if baseline:
        from bench import baseline_app as module
    else:
        import function_app as module
    return {f.get_function_name(): f.get_user_function() for f in module.app.get_functions()}


def deliver(functions: dict[str, Any], item: dict[str, Any], baseline: bool) -> None:
    from scripts.local_host import binding_for, function_for

    functions["forward" if baseline else function_for(item)](binding_for(item))


def log_like_the_host() -> None:
    """The host collects every log line the app writes at INFO and above: format them, then drop them."""
    logging.basicConfig(level=logging.INFO, stream=open(os.devnull, "w"))


def peak_rss_mib() -> float:
    """This process's peak resident memory. Not ru_maxrss: Linux carries that over from the parent
    across fork and exec, so a child of a big benchmark process would report the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def default_pool_threads() -> int:
    """The Python worker's pool size for sync functions when PYTHON_THREADPOOL_THREAD_COUNT is not set."""
    return min(32, (os.cpu_count() or 1) + 4)


def pool_threads() -> int:
    """The size of the Python worker's pool for sync functions, as the worker reads it."""
    return int(os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT") or default_pool_threads())


def storm(functions: dict[str, Any], events: list[dict[str, Any]], threads: int) -> dict[str, Any]:
    def timed(item: dict[str, Any]) -> tuple[float, str]:
        started = time.perf_counter()
        try:
            deliver(functions, item, baseline=False)
            error = ""
        except Exception as failure:  # counted and reported: the benchmark checks for none
            error = f"{type(failure).__name__}: {str(failure)[:200]}"
        return time.perf_counter() - started, error

    started, cpu_started = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(timed, events))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    # A delivery that raised (e.g. its duplicate was still in progress) is redelivered by Event Grid.
    raised = [item for item, (_, error) in zip(events, results, strict=True) if error]
    redelivered = [timed(item) for item in raised]
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,  # this worker's own CPU, whatever else loads the machine
        "latencies": [latency for latency, _ in results],
        "redelivered": len(raised),
        "errors": [error for _, error in redelivered if error],
    }


def sample_payloads() -> list[dict[str, Any]]:
    """Every sample event in tests/events, bad ones included (they are rejected and recorded)."""
    items = []
    for path in sorted((ROOT / "tests" / "events").rglob("*.json")):
        try:
            decoded = json.loads(path.read_text())
        except ValueError:
            continue
        items.extend(decoded if isinstance(decoded, list) else [decoded])
    return [item for item in items if isinstance(item, dict)]


def replay_counted(functions: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, int]:
    """Replay each event as its own delivery; how many actions of each kind ended in each status."""
    from scripts.local_host import replay_payload
    from shared.pipeline.reports import observe

    with observe() as reports:
        for item in items:
            replay_payload(json.dumps(item).encode(), functions, "sample")
    return dict(Counter(f"{report.action} {report.status}" for report in reports if report.action))


def use_fake_azureml(url: str, ca_file: str) -> None:
    """Send this worker's Azure ML actions to the fake (tests/support/azureml_fake.py) at `url`."""
    from handlers.azureml.client import use_connection
    from tests.support.azureml_fake import connection_to

    use_connection(connection_to(url, ca_file))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=("index", "first-event", "storm", "memory"))
    parser.add_argument(
        "events",
        nargs="?",
        help="a JSON file: one event (first-event), a list (storm), more after the samples (memory)",
    )
    parser.add_argument("--baseline", action="store_true", help="the baseline app instead of function_app")
    parser.add_argument(
        "--azureml",
        nargs=2,
        metavar=("URL", "CA"),
        help="the Azure ML actions go to the fake at URL, whose certificate is in file CA",
    )
    args = parser.parse_args()
    log_like_the_host()

    functions = indexed(args.baseline)
    result: dict[str, Any] = {"seconds": time.perf_counter() - STARTED}
    if args.scenario == "first-event":
        deliver(functions, json.loads(Path(args.events).read_text()), args.baseline)
        result["seconds"] = time.perf_counter() - STARTED
    elif args.scenario == "storm":
        events = json.loads(Path(args.events).read_text())
        deliver(functions, events[0], baseline=False)  # the worker is warm when the storm hits
        result = storm(functions, events[1:], pool_threads())
    elif args.scenario == "memory":
        if args.azureml:
            use_fake_azureml(*args.azureml)
        items = sample_payloads() + (json.loads(Path(args.events).read_text()) if args.events else [])
        if args.baseline:
            for item in items:
                deliver(functions, item, baseline=True)
        else:
            result["outcomes"] = replay_counted(functions, items)
    result["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
