"""Replay Azure ML events through the real function app, without Azure Functions Core Tools.

    python scripts/replay.py [--routes FILE] [--dry-run] [--explain] [--json] [--azurite] [--concurrency N] PATH...
    python scripts/replay.py --dead-letter [--container NAME] [--since 24h] [--dry-run] [--json]
    python scripts/replay.py [--now TIME] [PATH...] --tick TIME [--tick TIME ...]

PATH is a JSON file holding one event or an array (Event Grid or CloudEvents schema), or a folder
of them. Each event goes to the function that would receive it in Azure, found through the app's own
index (`app.get_functions()`), as the Functions host would call it: the argument built by
azure-functions' own converter from the event's JSON, as the Python worker builds it. An event that
converter refuses (an `eventTime` it cannot parse) fails before any app code runs, as in Azure, where
Event Grid retries it and then dead-letters it: replay reports it `refused`, naming the field.

--explain first says, per event and route, whether the route takes it and if not the first condition
that failed with the event's value (`data.ExperimentName: 'dev-churn' does not start with 'prod-'`),
then the gate's decision (silence, mute, repeat_interval, group) and the actions that would run.

--dead-letter replays the blobs Event Grid dead-lettered into the storage account's container
(DEAD_LETTER_CONTAINER, default `deadletter`), showing why each event died, and marks a blob
replayed only when every action of every event in it is done (or need not run); replayed blobs are
skipped, so running it twice does nothing the second time.

--now TIME delivers the events as of TIME (ISO 8601): the app's clock reads TIME throughout. --tick TIME
runs the app's timer functions (digests, expectations) as of TIME, after the events if there are any:
deliver a Running event `--now 01:00`, then `--tick 07:30` shows what a route's `expect: {within: 6h}`
does when nothing followed it.

Exit status: 0 when nothing failed or was rejected, 1 when an action failed or the worker refused an
event, 2 when an input was rejected (and nothing failed).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

from scripts.cli import duration_argument, positive_int, time_argument
from scripts.local_host import event_files, events_in, indexed_functions, replay_payload, timer_functions
from shared.platform.clock import frozen_at

ROOT = Path(__file__).resolve().parent.parent


def shown(text: str) -> str:
    """Event text as a terminal shows it: control and format characters (escape sequences, bidi
    overrides) as visible escapes, never interpreted."""
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text)


def print_table(reports: list[Any]) -> None:
    rows = [("EVENT", "TYPE", "ROUTE", "ACTION", "STATUS", "DETAIL")]
    for r in reports:
        rows.append(tuple(shown(cell) for cell in (
            r.event_id or "-", (r.event_type or "-").rsplit(".", 1)[-1], r.route or "-",
            f"{r.action}#{r.position}" if r.action else "-", r.status, r.detail.replace("\n", " ")[:90],
        )))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)) + "  " + row[5])
    counts: dict[str, int] = {}
    for r in reports:
        counts[r.status] = counts.get(r.status, 0) + 1
    print("\n" + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", metavar="PATH", help="event JSON files or folders")
    parser.add_argument("--dead-letter", action="store_true", help="replay Event Grid's dead-letter blobs")
    parser.add_argument("--container", help="dead-letter container (default: DEAD_LETTER_CONTAINER, else deadletter)")
    parser.add_argument(
        "--since", type=duration_argument, help="with --dead-letter: only blobs written within, e.g. 24h"
    )
    parser.add_argument("--routes", help="routes file (default: the ROUTES_FILE setting, else routes.yaml)")
    parser.add_argument("--dry-run", action="store_true", help="plan only: no action runs, no ledger is written")
    parser.add_argument("--explain", action="store_true", help="say why each route takes each event or not")
    parser.add_argument("--json", action="store_true", help="one JSON object per (event, route, action)")
    parser.add_argument("--azurite", action="store_true", help="start a throwaway in-memory Azurite for the ledger")
    parser.add_argument("--verbose", action="store_true", help="also print the app's log lines")
    parser.add_argument(
        "--concurrency", type=positive_int, default=1, metavar="N",
        help="deliver N events at a time, as the worker's thread pool of PYTHON_THREADPOOL_THREAD_COUNT does"
        " (default 1: one after another)",
    )  # fmt: skip
    parser.add_argument("--now", type=time_argument, metavar="TIME",
                        help="deliver the events as of this time (ISO 8601, e.g. 2026-12-02T01:00:00Z)")  # fmt: skip
    parser.add_argument("--tick", type=time_argument, action="append", default=[], metavar="TIME",
                        help="then run the app's timers as of this time (repeatable; no events needed)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.dead_letter and (args.paths or args.tick):
        parser.error("give event files (PATH...) or --dead-letter, not both (and no --tick with --dead-letter)")
    if not (args.dead_letter or args.paths or args.tick):
        parser.error("give event files (PATH...), --tick TIME or --dead-letter")
    if (args.container or args.since) and not args.dead_letter:
        parser.error("--container and --since go with --dead-letter")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR, format="%(levelname)s %(name)s %(message)s"
    )

    if args.routes:
        os.environ["ROUTES_FILE"] = str(Path(args.routes).resolve())
    azurite = None
    if args.azurite:
        from scripts import azurite as azurite_tool

        azurite = azurite_tool.start()
        os.environ["AzureWebJobsStorage"] = azurite.connection_string
    try:
        return run(args)
    finally:
        if azurite:
            azurite.stop()


def run(args: argparse.Namespace) -> int:
    from shared import worker
    from shared.ledger.memory import MemoryLedger
    from shared.pipeline.engine import Engine
    from shared.pipeline.reports import observe
    from shared.platform.storage import StorageNotConfigured
    from shared.routing.routes import RoutesError
    from shared.settings import current_settings
    from shared.worker import routes_for

    current_settings.cache_clear()
    settings = current_settings()
    try:
        routes_for(settings.routes_file, settings.environ)
    except RoutesError as error:
        print(error, file=sys.stderr)
        return 1
    if args.dry_run:
        worker.use_engine(
            Engine(settings, lambda: routes_for(settings.routes_file, settings.environ), MemoryLedger(), dry_run=True)
        )
    else:
        worker.use_engine(None)
        try:
            worker.current_engine()
        except StorageNotConfigured as error:
            print(f"{error}\n(or pass --azurite to use a throwaway local one, or --dry-run)", file=sys.stderr)
            return 1
    functions = indexed_functions()
    if args.dead_letter:
        return replay_dead_letters(args, settings, functions)
    if args.explain:
        explain_files(args, routes_for(settings.routes_file, settings.environ), settings)
    with observe() as reports:
        with frozen_at(args.now) if args.now else nullcontext():
            for path in event_files(args.paths):
                try:
                    body = path.read_bytes()
                except OSError as error:
                    print(f"{path}: {error.strerror}", file=sys.stderr)
                    return 1
                try:
                    replay_payload(body, functions, str(path), args.concurrency)
                except worker.DeliveryFailed as error:  # storage down: nothing ran without its claim
                    print(f"{path}: {error}", file=sys.stderr)
                    return 1
        for moment in args.tick:
            if problem := tick(moment, functions):
                print(problem, file=sys.stderr)
                return 1
    if args.json:
        for report in reports:
            print(json.dumps(report.to_dict(), default=str))
    else:
        print_table(reports)
    return exit_status(reports)


def explain_files(args: argparse.Namespace, table: Any, settings: Any) -> None:
    """Each event's explanation, before it is replayed; silences are read unless it is a dry run."""
    from shared.events.monitoring import derived_events
    from shared.routing.explain import event_lines, explain

    silence = None if args.dry_run else silence_lookup(settings)
    for path in event_files(args.paths):
        for item in events_in(path):
            if isinstance(item, str):
                continue  # reported as rejected in the table
            for event in (item, *derived_events(item)):
                explanations = explain(table, event, silence)
                if args.json:
                    print(json.dumps({"explain": event.id, "event_type": event.event_type, "source": str(path),
                                      "routes": [x.to_dict() for x in explanations]}))  # fmt: skip
                else:
                    print("\n".join([f"{path}:", *(f"  {line}" for line in event_lines(event, explanations))]))
    if not args.json:
        print()


def silence_lookup(settings: Any) -> Callable[[str, Any], str | None]:
    """The description of the silence covering (route, event view) now; None when storage cannot say."""
    from azure.core.exceptions import AzureError

    from shared.noise.silences import SilenceStore

    store = SilenceStore(settings)

    def lookup(route: str, view: Any) -> str | None:
        try:
            silence = store.silencing(route, view)
        except AzureError as error:
            return f"unknown (silences unavailable: {str(error).splitlines()[0]})"
        return silence.describe() if silence else None

    return lookup


def tick(moment: datetime, functions: dict[str, Callable[[Any], None]]) -> str | None:
    """Run every timer function of the app as of `moment`, as the host would; a problem, or None."""
    from shared.ledger.records import LedgerUnavailable

    with frozen_at(moment):
        for name in timer_functions():
            try:
                functions[name](None)  # the app's timers do not read their TimerRequest
            except LedgerUnavailable as error:
                return f"--tick {moment.isoformat()}: {name}: {error}"
    return None


def exit_status(reports: list[Any]) -> int:
    statuses = {report.status for report in reports}
    return 1 if statuses & {"failed", "refused"} else 2 if "rejected" in statuses else 0


def replay_dead_letters(args: argparse.Namespace, settings: Any, functions: dict[str, Callable[[Any], None]]) -> int:
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    from scripts.deadletter import DeadLetters, dead_letter_infos
    from shared import worker
    from shared.pipeline.reports import observe
    from shared.platform.clock import now

    since = now() - args.since if args.since else None
    everything: list[Any] = []
    try:
        dead_letters = DeadLetters(settings, args.container)
        try:
            blobs = list(dead_letters.blobs(since))
        except ResourceNotFoundError:
            print(f"no dead letters: container {dead_letters.container_name} does not exist yet "
                  "(nothing has been dead-lettered there)", file=sys.stderr)  # fmt: skip
            return 0
        pending = [blob for blob in blobs if not blob.replayed]
        print(f"{dead_letters.container_name}: {len(pending)} dead-letter blob(s) to replay"
              f" ({len(blobs) - len(pending)} replayed before)", file=sys.stderr)  # fmt: skip
        for blob in pending:
            body = dead_letters.read(blob)
            infos = dead_letter_infos(body)
            with observe() as reports:
                replay_payload(body, functions, f"{dead_letters.container_name}/{blob.name}", args.concurrency)
            settled = not args.dry_run and all(report.settled for report in reports)
            if settled:
                dead_letters.mark_replayed(blob)
            everything.extend(reports)
            refused = any(report.status == "refused" for report in reports)
            outcome = (
                "marked replayed" if settled
                else "NOT settled: the Functions worker refuses an event in it before the app runs (below); as it"
                " is, it can never be delivered: correct that event in the blob, or delete the blob" if refused
                else "dry run" if args.dry_run
                else "NOT settled, will be retried"
            )  # fmt: skip
            if args.json:
                for report in reports:
                    info = infos.get(report.event_id)
                    line = {**report.to_dict(), "blob": blob.name, "blob_settled": settled,
                            "dead_letter": vars(info) if info else None}  # fmt: skip
                    print(json.dumps(line, default=str))
                continue
            print(f"\n{shown(blob.name)} (written {blob.last_modified:%Y-%m-%d %H:%M:%S}Z): {outcome}")
            for event_id, info in infos.items():
                print(f"  {shown(event_id or '(no id)')}: {shown(info.summary())}")
            print_table(reports)
    except AzureError as error:
        print(f"dead-letter storage unavailable: {str(error).splitlines()[0]}", file=sys.stderr)
        return 1
    except worker.DeliveryFailed as error:  # the ledger is down: nothing ran without its claim
        print(str(error), file=sys.stderr)
        return 1
    return exit_status(everything)


if __name__ == "__main__":
    sys.exit(main())
