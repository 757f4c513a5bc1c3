"""Delivery history: what the ledger knows about each action, for "did the alert go out?".

    python scripts/history.py [--event ID] [--route NAME] [--status failed] [--since 1h] [--json]
    python scripts/history.py resend ID [--route NAME] [--action N] --reason "..." [--event-file FILE]

Lists ledger records (when, event, route, action, target, status, attempts, and what happened or
why not: the error of a failed action, the reason a skipped or grouped one did not run) oldest
first, and the rejected inputs (status REJECTED, with the reason), from the storage account the app
uses (AzureWebJobsStorage; Azurite locally). Filters run in the table service, not here. `--event`
takes a whole id or its first characters. An event with no record at all was either not received,
or received and taken by no route (unrouted events are not recorded: `replay.py --explain` on the
event says which condition failed).

`resend` runs one recorded action again, on purpose: the event as its record kept it (or
--event-file), the route as routes.yaml has it now, no silence or group in the way. The resend gets
its own record (`<action> resend`, with who asked and why) and its own idempotency key, so a
receiver that de-duplicates still takes it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from scripts.cli import duration_argument
from shared.ledger.base import Ledger
from shared.ledger.records import FAILED, RUNNING, LedgerRecord, LedgerUnavailable, RejectedRecord
from shared.platform.clock import now

ROOT = Path(__file__).resolve().parent.parent

REJECTED = "REJECTED"  # upper case: a rejected input is not an action, and should stand out


@dataclass
class HistoryLine:
    when: datetime | None
    event_id: str
    event_type: str
    route: str
    action: str
    target: str
    status: str
    attempts: int
    error: str
    detail: str

    @property
    def reason(self) -> str:
        """What the table shows: the error of a failure, else what happened or why it did not."""
        return self.error or self.detail

    @classmethod
    def of_record(cls, record: LedgerRecord, at: datetime) -> HistoryLine:
        error = record.detail if record.status == FAILED else ""
        if record.status == RUNNING and record.lease_until is not None and record.lease_until <= at:
            error = "lease expired: the worker stopped before recording an outcome; the next delivery takes it over"
        action = f"{record.kind}#{record.position}" + (" resend" if record.tag else "")
        if record.tag:  # who asked and why, before what happened
            by, reason = record.extra.get("by") or "?", record.extra.get("reason") or ""
            error = f"resent by {by} ({reason}): {error}" if error else error
            detail = f"resent by {by} ({reason}): {record.detail}"
        else:
            detail = record.detail
        return cls(
            when=record.updated or record.created, event_id=record.event_id, event_type=record.event_type,
            route=record.route, action=action, target=record.target,
            status=record.status, attempts=record.attempts, error=error, detail=detail,
        )  # fmt: skip

    @classmethod
    def of_rejection(cls, rejection: RejectedRecord) -> HistoryLine:
        payload = f"payload {rejection.payload_size} bytes" + (
            f" in blob {rejection.payload_blob}" if rejection.payload_blob else ""
        )
        return cls(
            when=rejection.received, event_id=rejection.event_id, event_type=rejection.event_type,
            route="", action="", target=f"function {rejection.function}", status=REJECTED, attempts=0,
            error=rejection.reason, detail=payload,
        )  # fmt: skip


def history(
    ledger: Ledger,
    *,
    event_id: str | None = None,
    route: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    prefix: bool = False,
) -> list[HistoryLine]:
    """The records and rejections matching the filters; `event_id` is an exact id, else (when none
    has it, or with `prefix`) the start of ids."""
    at = now()
    lines = [
        HistoryLine.of_record(record, at)
        for record in ledger.records(event_id, since, route=route, status=status, prefix=prefix)
        if status != REJECTED.lower()
    ]
    if route is None and status in (None, REJECTED.lower()):
        rejections = ledger.rejections(event_id, since, prefix=prefix)
        lines.extend(HistoryLine.of_rejection(rejection) for rejection in rejections)
    if event_id and not lines and not prefix:
        return history(ledger, event_id=event_id, route=route, status=status, since=since, prefix=True)
    return sorted(lines, key=lambda line: (line.when or datetime.min.replace(tzinfo=at.tzinfo), line.event_id))


def print_table(lines: Iterable[HistoryLine]) -> None:
    header = ("WHEN (UTC)", "EVENT", "ROUTE", "ACTION", "TARGET", "STATUS", "ATTEMPTS", "DETAIL")
    rows = [header]
    for line in lines:
        when = f"{line.when:%Y-%m-%d %H:%M:%S}" if line.when else "-"
        reason = line.reason.replace("\n", " ")
        rows.append((when, line.event_id or "-", line.route or "-", line.action or "-", line.target or "-",
                     line.status, str(line.attempts), reason[:100] + ("…" if len(reason) > 100 else "")))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    print(f"\n{len(rows) - 1} record(s)")


def to_json(line: HistoryLine) -> str:
    fields: dict[str, Any] = asdict(line)
    fields["when"] = line.when.isoformat() if line.when else None
    return json.dumps(fields)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["resend"]:
        return resend_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--event", metavar="ID", help="one event's records (its id, or the id's first characters)")
    parser.add_argument("--route", metavar="NAME", help="one route's records (rejected inputs have no route)")
    parser.add_argument("--status", help="done, failed, skipped, running, or rejected")
    parser.add_argument(
        "--since", type=duration_argument, metavar="DURATION", help="recent records only, e.g. 1h, 30m, 7d"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)

    from shared.ledger.table import TableLedger
    from shared.platform.storage import StorageNotConfigured
    from shared.settings import current_settings

    try:
        ledger = TableLedger(current_settings())
        lines = history(
            ledger,
            event_id=args.event,
            route=args.route,
            status=args.status.lower() if args.status else None,
            since=now() - args.since if args.since else None,
        )
    except (StorageNotConfigured, LedgerUnavailable) as error:
        print(error, file=sys.stderr)
        return 1
    if args.event and not lines and not (args.route or args.status or args.since):
        print(f"no record of an event {args.event!r}: either it was not received, or it was received and no route "
              "took it (unrouted events are not recorded; `replay.py --explain FILE` says which condition failed)",
              file=sys.stderr)  # fmt: skip
        return 1
    if args.json:
        for line in lines:
            print(to_json(line))
    else:
        print_table(lines)
    return 0


def resend_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="history.py resend", description="Run one recorded action again, on purpose.")
    parser.add_argument("event", metavar="ID", help="the event's id, or its first characters")
    parser.add_argument("--route", metavar="NAME", help="the route (needed when several acted on the event)")
    parser.add_argument("--action", metavar="N", help="the action: its position (1), kind (email) or both (email#1)")
    parser.add_argument("--reason", required=True, help="why: kept in the resend's record")
    parser.add_argument("--event-file", metavar="FILE", help="the event, when its record does not hold it")
    args = parser.parse_args(argv)

    import getpass

    from shared.events.model import EventRejected
    from shared.events.parse import parse_event
    from shared.platform.storage import StorageNotConfigured
    from shared.worker import current_engine

    try:
        engine = current_engine()
        candidates = [record for record in _records_of(engine.ledger, args.event) if not record.tag]
        chosen = [record for record in candidates if _chosen(record, args.route, args.action)]
        if len(chosen) != 1:
            listed = ", ".join(f"{r.event_id} {r.route} {r.kind}#{r.position}" for r in chosen or candidates)
            what = "no recorded action" if not chosen else f"{len(chosen)} recorded actions"
            print(f"resend: {what} of event {args.event!r} match; choose one with --route and --action"
                  + (f" (recorded: {listed})" if listed else ""), file=sys.stderr)  # fmt: skip
            return 2
        (original,) = chosen
        text = Path(args.event_file).read_text(encoding="utf-8") if args.event_file else original.event
        if not text:
            print("resend: the record does not hold the event (a digest, or too large): pass --event-file",
                  file=sys.stderr)  # fmt: skip
            return 2
        raw = json.loads(text)
        event = parse_event(raw[0] if isinstance(raw, list) else raw)
        if event.id != original.event_id:
            print(f"resend: --event-file holds event {event.id}, not {original.event_id}", file=sys.stderr)
            return 2
        report = engine.resend(original, event, args.reason, getpass.getuser())
    except (StorageNotConfigured, LedgerUnavailable, OSError, ValueError, EventRejected) as error:
        print(f"resend: {error}", file=sys.stderr)
        return 1
    print(f"resent {original.key}: {report.status}: {report.detail}")
    return 0 if report.status == "done" else 1


def _records_of(ledger: Ledger, event: str) -> list[LedgerRecord]:
    records = list(ledger.records(event))
    return records or list(ledger.records(event, prefix=True))


def _chosen(record: LedgerRecord, route: str | None, action: str | None) -> bool:
    if route is not None and record.route != route:
        return False
    return action is None or action in (str(record.position), record.kind, f"{record.kind}#{record.position}")


if __name__ == "__main__":
    sys.exit(main())
