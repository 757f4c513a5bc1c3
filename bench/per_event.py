"""3. Per-event cost in a warm worker, through the app's own functions, against the floor of each case:

  a. dry run (no ledger)        floor: JSON parse + func.EventGridEvent construction (what the host does anyway)
  b. `log` action, ledger       floor: the same + one Azurite insert (azure-data-tables create_entity)
  c. `webhook` action, ledger   floor: JSON parse, an insert, one loopback POST with a reused httpx client and a
                                conditional update (the exactly-once floor); shown against parse + POST too

A `log` action's outcome is known before it runs, so its claim's insert records it: one ledger write,
as in floor b. A webhook's is not: exactly-once needs a claim before the POST and an outcome after it,
two ledger round trips, so c is judged against the floor that does both (insert, then a conditional
update of the same entity), which is the cost of the guarantee itself: at most 1.1× that. The dry run is
judged by its allowance: at most 1 ms over parse + binding. Floor entities have the ledger record's
shape, and the floors use the app's own storage client. Every variant runs once per round, rounds alternate,
and each figure is the median over rounds, so that drift (Azurite's, the machine's) hits all.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.support import Figure, Lab, app_engine, event_with_id, median, sample_event, worker_engine

MAX_OVERHEAD_MS, MAX_RATIO = 1.0, 1.5  # the dry run: the allowance over its floor; a `log` action: both
MAX_EXACTLY_ONCE_RATIO = 1.1  # a webhook against claim + POST + outcome

ROUTES = """
routes:
  - name: per-event
    events: [RunStatusChanged]
    actions:
      - {action}
"""
LOG = "log: {}"
WEBHOOK = 'webhook: {url: "${HOOK_URL}/per-event", allow_private: true}'


def per_event_ms(handle: Callable[[str], None], count: int) -> float:
    """Milliseconds per event for `handle` over `count` events, each with its own id, after a warm-up."""
    template = sample_event()
    texts = [json.dumps(event_with_id(template)) for _ in range(count + 3)]
    for text in texts[count:]:
        handle(text)
    started = time.perf_counter()
    for text in texts[:count]:
        handle(text)
    return (time.perf_counter() - started) * 1000 / count


def ledger_shaped_entity() -> dict[str, Any]:
    """An entity with the properties and types of a ledger record (shared/ledger/table.py), keyed afresh."""
    now = datetime.now(UTC)
    return {
        "PartitionKey": uuid.uuid4().hex, "RowKey": "per-event|000", "event_id": uuid.uuid4().hex,
        "route": "per-event", "position": 0, "kind": "webhook", "target": "127.0.0.1:8000/per-event",
        "status": "running", "attempts": 0, "detail": "", "function": "run_events",
        "event_type": "Microsoft.MachineLearningServices.RunStatusChanged", "worker": "bench:1", "extra": "{}",
        "created": now, "updated": now, "lease_until": now + timedelta(minutes=5),
    }  # fmt: skip


def figure(
    case: str, app: float, floor: float, floor_label: str, *, overhead: float | None = None, ratio: float | None = None
) -> Figure:
    """The app's figure against a floor, judged by at most `overhead` ms over it and at most `ratio` times
    it (either or both; neither: shown for comparison, not judged)."""
    limits = ([f"≤ +{overhead:g} ms"] if overhead is not None else []) + ([f"≤ {ratio}×"] if ratio else [])
    result = Figure("3 per event", case, app, "ms", floor, floor_label, " and ".join(limits) or "(comparison)",
                    note=f"{1000 / app:.0f} events/s; overhead {app - floor:+.2f} ms")  # fmt: skip
    if limits:
        result.met = (overhead is None or app - floor <= overhead) and (ratio is None or app / floor <= ratio)
    return result


def bound(case: str, least: float, floor: float, floor_label: str, why: str) -> Figure:
    """What any implementation pays at least, set against the same floor: a target below it cannot be met."""
    return Figure("3 per event", case, least, "ms", floor, floor_label, "(lower bound)", note=why)


def run(lab: Lab) -> list[Figure]:
    import httpx
    from azure.core import MatchConditions

    from scripts.local_host import binding_for, indexed_functions
    from shared.events.parse import parse_event
    from shared.platform.storage import table_service
    from shared.settings import Settings

    function = indexed_functions()["run_events"]
    rounds, dry_count, ledger_count = lab.count(5, 2), lab.count(1000, 20), lab.count(80, 5)
    receiver = lab.receiver()
    engines = {
        "dry run": app_engine(lab.app_settings(ROUTES.format(action=LOG)), dry_run=True),
        "log": app_engine(lab.app_settings(ROUTES.format(action=LOG))),
        "webhook": app_engine(lab.app_settings(ROUTES.format(action=WEBHOOK), HOOK_URL=receiver.url)),
    }
    floor_settings = Settings.from_environ(lab.app_settings("routes: []"))
    table = table_service(floor_settings).create_table(floor_settings.ledger_table)
    client = httpx.Client()
    body = json.dumps({"route": "per-event", "event": sample_event()}).encode()

    def parse(text: str) -> None:
        binding_for(json.loads(text))

    def post() -> None:
        client.post(f"{receiver.url}/floor", content=body, headers={"Content-Type": "application/json"})

    def insert(text: str) -> None:
        parse(text)
        table.create_entity(ledger_shaped_entity())

    def parse_and_post(text: str) -> None:
        parse(text)
        post()

    def typed(text: str) -> None:
        parse_event(binding_for(json.loads(text)))

    def post_and_record(text: str) -> None:
        parse(text)
        post()
        table.create_entity(ledger_shaped_entity())

    def guarded(act: Callable[[], None]) -> Callable[[str], None]:
        """The floor of an exactly-once action: claim (insert), act, record (conditional update)."""

        def handle(text: str) -> None:
            parse(text)
            entity = ledger_shaped_entity()
            etag = table.create_entity(entity)["etag"]
            act()
            entity.update(status="done", attempts=1, detail="done", updated=datetime.now(UTC))
            del entity["lease_until"]
            table.update_entity(entity, mode="replace", etag=etag, match_condition=MatchConditions.IfNotModified)

        return handle

    def through_app(text: str) -> None:
        function(binding_for(json.loads(text)))

    # name -> (what handles one event, how many events a round, the worker's engine meanwhile)
    variants: dict[str, tuple[Callable[[str], None], int, Any]] = {
        "parse": (parse, dry_count, None),
        "dry run": (through_app, dry_count, engines["dry run"]),
        "typed": (typed, dry_count, None),
        "insert": (insert, ledger_count, None),
        "log": (through_app, ledger_count, engines["log"]),
        "post": (parse_and_post, ledger_count, None),
        "post + record": (post_and_record, ledger_count, None),
        "claim + post + finish": (guarded(post), ledger_count, None),
        "webhook": (through_app, ledger_count, engines["webhook"]),
    }
    timings: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (handle, count, engine) in variants.items():
            with worker_engine(engine):
                timings[name].append(per_event_ms(handle, count))
    client.close()
    ms = {name: median(values) for name, values in timings.items()}
    return [
        figure("a. dry run", ms["dry run"], ms["parse"], "parse + EventGridEvent", overhead=MAX_OVERHEAD_MS),
        bound("a. least: the typed event alone", ms["typed"], ms["parse"], "parse + EventGridEvent",
              "parse_event only: no routing, no outcome line"),
        figure("b. log action, ledger on Azurite", ms["log"], ms["insert"], "parse + 1 insert",
               overhead=MAX_OVERHEAD_MS, ratio=MAX_RATIO),
        figure("c. webhook action, ledger on Azurite", ms["webhook"], ms["claim + post + finish"],
               "the exactly-once floor: parse + insert + POST + update", ratio=MAX_EXACTLY_ONCE_RATIO),
        figure("c. webhook action, ledger on Azurite", ms["webhook"], ms["post"], "parse + 1 POST"),
        bound("c. least: a POST whose outcome is recorded", ms["post + record"], ms["post"], "parse + 1 POST",
              "parse + POST + 1 insert: one write, not even exactly-once"),
    ]  # fmt: skip
