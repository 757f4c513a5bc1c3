"""What events and the timer do to the open expectations of routes with `expect:` (docs/expectations.md);
the rows they live in, and how they are laid out, are in expectation_rows.py.

The due row is written before the state row, so a crash between them leaves a due row that points at
nothing (dropped when read), never an open expectation that nothing will fire.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.events.expectation import ExpectationMissed
from shared.events.model import AmlEvent
from shared.noise.expectation_rows import (
    COLLECT,
    FIRE,
    STATE_ROW,
    Due,
    ExpectationRows,
    event_from,
    same_values,
    state_partition,
    window_partition,
)
from shared.noise.stored import stored_event_json
from shared.platform.clock import now as clock_now
from shared.platform.clock import utc
from shared.platform.tables import table_key
from shared.settings import Settings

# The `expect:` option and its windows (zoneinfo) load only where a route has `expect:`: a first event
# imports this module (its step statuses) and nothing of them.
if TYPE_CHECKING:
    from shared.routing.expect import FollowUp, Recurring
    from shared.routing.expect_windows import Window

logger = logging.getLogger("aml_events.noise.expectations")

OPEN, FIRED, CLOSED, LATE = "open", "fired", "closed", "late"
# What an event did to an expectation: the status of its report (settled: nothing left to do).
OPENED, ALREADY_OPEN, COUNTED, CLOSED_IN_TIME, CLOSED_LATE, IGNORED = "opened", "open", "counted", "closed", "late", \
    "ignored"  # fmt: skip
STEP_STATUSES = (OPENED, ALREADY_OPEN, COUNTED, CLOSED_IN_TIME, CLOSED_LATE, IGNORED)
RETENTION = timedelta(days=2)  # closed state is kept this long: Event Grid redelivers for 24 hours
RETRY_SECONDS = 60.0  # a missed expectation whose actions failed is fired again this much later
MAX_FIRE_TRIES = 5


@dataclass(frozen=True)
class Step:
    """What an event did to one route's expectation, for the report and the record."""

    route: str
    status: str  # opened, open (already), counted, closed, late, ignored
    detail: str
    late: ExpectationMissed | None = None  # the `resolved_late` notice to deliver


def expectation_id(route: str, partition: str, seq: int) -> str:
    """The synthetic event's id: the ledger key of the missed expectation's actions."""
    return f"expectation:{route}:{partition[-16:]}:{seq}"


class ExpectationStore(ExpectationRows):
    def __init__(self, settings: Settings, now: Callable[[], datetime] = clock_now) -> None:
        super().__init__(settings, now)
        self._armed: set[tuple[str, str, str]] = set()

    # ---- follow-up expectations -------------------------------------------------------------------

    def open(self, route: str, spec: FollowUp, event: AmlEvent) -> Step:
        """The route's event arrived: expect a follow-up within `spec.within` of now."""
        at = self.now()
        values = same_values(event, spec.same)
        partition = state_partition(route, values)
        outcome: dict[str, Any] = {}

        def change(row: dict[str, Any] | None) -> dict[str, Any] | None:
            outcome.clear()
            if row is not None and row.get("opened_by") == event.id:
                outcome["step"] = ("open", f"already opened by this event; due {_text(row.get('due'))}")
                return None
            if row is not None and row.get("status") == OPEN:
                since, due = _text(row.get("since")), _text(row["due"])
                outcome["step"] = ("open", f"already expecting since {since}; due {due}")
                return None
            moment = _event_moment(event, at)
            if row is not None and row.get("status") == CLOSED and _utc(row.get("closed_event_time")) >= moment:
                # The follow-up was delivered before the event it follows (Event Grid does not order events).
                outcome["step"] = ("closed", "its follow-up arrived first: nothing to wait for")
                return None
            seq = int(row.get("seq", 0)) + 1 if row else 1
            due = at + timedelta(seconds=spec.within)
            self._add_due(due, partition, seq, FIRE, route)
            outcome["step"] = ("opened", f"expecting {spec.describe()}: due {_text(due)}")
            return {
                "PartitionKey": partition, "RowKey": STATE_ROW, "route": route, "kind": "follow_up",
                "status": OPEN, "seq": seq, "since": at, "due": due, "opened_by": event.id,
                "opening": stored_event_json(event), "same": json.dumps(values), "fire_tries": 0,
            }  # fmt: skip

        self._update_state(partition, change)
        status, detail = outcome["step"]
        return Step(route, status, detail)

    def follow_up(self, route: str, spec: FollowUp, event: AmlEvent) -> Step:
        """A follow-up arrived: close the expectation it answers (silently before the deadline)."""
        at = self.now()
        values = same_values(event, spec.same)
        partition = state_partition(route, values)
        moment = _event_moment(event, at)
        row = self._state(partition)
        if row is None or row.get("status") in (CLOSED, LATE):
            # Remember it, so that an opening event delivered after its follow-up opens nothing.
            if row is None:
                marker = {"PartitionKey": partition, "RowKey": STATE_ROW, "route": route, "kind": "follow_up",
                          "status": CLOSED, "seq": 0, "closed_event_time": moment, "closed_by": event.id}  # fmt: skip
                self._insert_ignoring_existing(marker)
                self._add_due(at + RETENTION, partition, 0, COLLECT, route)
            return Step(route, "ignored", "no open expectation for it")
        return self._close(route, partition, row, spec, event, at)

    # ---- recurring expectations -------------------------------------------------------------------

    def arm(self, route: str, spec: Recurring) -> None:
        """Make sure the next window of a recurring expectation has its state and due rows
        (once per window and worker: the timer calls this every run)."""
        from shared.routing.expect_windows import next_window

        window = next_window(spec, self.now())
        key = (route, window.key, spec.describe())
        if key in self._armed:
            return
        self._ensure_window(route, spec, window)
        self._armed.add(key)

    def record(self, route: str, spec: Recurring, event: AmlEvent) -> Step:
        """A matching event for a recurring expectation: it counts for the window it happened in; after
        the deadline (between windows), it resolves the window that passed without it."""
        from shared.routing.expect_windows import last_window, window_containing

        at = self.now()
        moment = _event_moment(event, at)
        window = window_containing(spec, moment)
        if window is None:
            passed = last_window(spec, moment)
            row = self._state(window_partition(route, passed)) if passed else None
            if passed is None or row is None or row.get("status") not in (OPEN, FIRED):
                return Step(route, "ignored", "outside the expectation's windows")
            return self._close(route, window_partition(route, passed), row, spec, event, at)
        partition = self._ensure_window(route, spec, window)
        self._remember_reference(route, event)
        row = self._state(partition)
        if row is None or row.get("status") not in (OPEN, FIRED):
            return Step(route, "ignored", f"window {window.key} is already settled")
        return self._close(route, partition, row, spec, event, at)

    def _ensure_window(self, route: str, spec: Recurring, window: Window) -> str:
        partition = window_partition(route, window)
        self._add_due(window.end, partition, 1, FIRE, route)
        self._insert_ignoring_existing({
            "PartitionKey": partition, "RowKey": STATE_ROW, "route": route, "kind": "recurring", "status": OPEN,
            "seq": 1, "since": window.start, "due": window.end, "window": f"{window.key} ({spec.timezone})",
            "fire_tries": 0,
        })  # fmt: skip
        return partition

    # ---- closing ----------------------------------------------------------------------------------

    def _close(
        self, route: str, partition: str, row: dict[str, Any], spec: FollowUp | Recurring, event: AmlEvent,
        at: datetime,
    ) -> Step:  # fmt: skip
        seq, at_least = int(row["seq"]), spec.at_least
        if at_least > 1:
            self._insert_ignoring_existing(
                {"PartitionKey": partition, "RowKey": f"seen|{seq:06d}|{table_key(event.id)}", "at": at}
            )
            seen = self._seen(partition, seq)
            if seen < at_least:
                return Step(route, "counted", f"{seen} of {at_least} expected events")
        outcome: dict[str, Any] = {}

        def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
            outcome.clear()
            if current is None or int(current.get("seq", 0)) != seq or current.get("status") not in (OPEN, FIRED):
                outcome["step"] = ("ignored", "already closed")
                return None
            moment = _event_moment(event, at)
            late = current["status"] == FIRED or moment >= _utc(current.get("due"))
            current.update(status=LATE if late else CLOSED, closed_by=event.id, closed_at=at,
                           closed_event_time=moment)  # fmt: skip
            current.pop("fire_until", None)
            outcome["step"] = ("late" if late else "closed", f"closed by {event.short_type} {event.id}"
                               + (f", after its deadline {_text(current['due'])}" if late else ""))  # fmt: skip
            outcome["row"] = dict(current)
            return current

        self._update_state(partition, change)
        status, detail = outcome["step"]
        if status in ("closed", "late"):
            self._remove_due(_utc(row.get("due")), partition, seq, FIRE)
            self._add_due(at + RETENTION, partition, seq, COLLECT, route)
        notice = None
        if status == "late" and spec.resolved_late:
            notice = self._as_event(route, partition, outcome["row"], spec, late=event)
        return Step(route, status, detail, notice)

    # ---- the timer --------------------------------------------------------------------------------

    def take(self, due: Due, lease_seconds: float, spec: FollowUp | Recurring) -> ExpectationMissed | None:
        """The missed expectation to deliver, marked fired (or a fire whose worker died, resumed); None
        when it was closed, is not due yet, or another timer is delivering it."""
        at = self.now()
        taken: dict[str, Any] = {}

        def change(row: dict[str, Any] | None) -> dict[str, Any] | None:
            taken.clear()
            if row is None or int(row.get("seq", 0)) != due.seq or row.get("status") in (CLOSED, LATE):
                taken["drop"] = True
                return None
            if row["status"] == OPEN and _utc(row.get("due")) > at:
                return None  # a due row written early by a racing opening: not yet
            if row["status"] == FIRED and _utc(row.get("fire_until")) > at:
                return None  # another timer is delivering it (or retries it later)
            if int(row.get("fire_tries", 0)) >= MAX_FIRE_TRIES:
                taken["drop"] = True
                return None
            row.update(status=FIRED, fire_until=at + timedelta(seconds=lease_seconds),
                       fire_tries=int(row.get("fire_tries", 0)) + 1, fired_at=row.get("fired_at") or at)  # fmt: skip
            taken["row"] = dict(row)
            return row

        self._update_state(due.state, change)
        if taken.get("drop"):
            self._delete_due(due)
            return None
        if "row" not in taken:
            return None
        return self._as_event(due.route, due.state, taken["row"], spec)

    def fired(self, due: Due, *, settled: bool) -> None:
        """After delivering: done (the due row goes, the state is removed later), or tried again in a minute."""
        at = self.now()
        if not settled:

            def retry(row: dict[str, Any] | None) -> dict[str, Any] | None:
                if row is None or row.get("status") != FIRED:
                    return None
                row["fire_until"] = at + timedelta(seconds=RETRY_SECONDS)
                return row

            self._update_state(due.state, retry)
            return
        self._add_due(at + RETENTION, due.state, due.seq, COLLECT, due.route)
        self._delete_due(due)

    def drop(self, due: Due) -> None:
        """A due row whose route no longer expects anything: forget it (its state expires)."""
        logger.warning("expectation %s: route %s no longer has `expect:`; not fired", due.state, due.route)
        self._add_due(self.now() + RETENTION, due.state, due.seq, COLLECT, due.route)
        self._delete_due(due)

    def collect(self, due: Due) -> None:
        """Remove an expectation's rows once they cannot matter any more (unless it was opened again)."""
        row = self._state(due.state)
        if row is None or (int(row.get("seq", 0)) == due.seq and row.get("status") != OPEN):
            rows = self.table.query_entities("PartitionKey eq @p", parameters={"p": due.state}, select=["RowKey"])
            for entity in list(rows):
                self._delete(due.state, entity["RowKey"])
        self._delete_due(due)

    # ---- the synthetic event ----------------------------------------------------------------------

    def _as_event(
        self, route: str, partition: str, row: dict[str, Any], spec: FollowUp | Recurring,
        late: AmlEvent | None = None,
    ) -> ExpectationMissed:  # fmt: skip
        seq, at_least = int(row["seq"]), spec.at_least
        opening = event_from(row.get("opening"))
        reference = None if opening else self._reference(route)
        seen = self._seen(partition, seq) if at_least > 1 else 0
        return ExpectationMissed.of(
            expectation_id(route, partition, seq), route, spec.describe(), _utc(row.get("since")),
            _utc(row.get("due")), opening=opening, window=row.get("window", ""), seen=seen, at_least=at_least,
            late=late, reference=reference,
        )  # fmt: skip


def _event_moment(event: AmlEvent, at: datetime) -> datetime:
    """When the event happened: its own time, unless missing or ahead of the clock (then: now)."""
    if event.event_time is None or event.event_time.tzinfo is None:
        return at
    return min(event.event_time.astimezone(UTC), at)


def _utc(value: Any) -> datetime:
    """A stored time in UTC; a missing one is the end of time (never due)."""
    return datetime.max.replace(tzinfo=UTC) if value is None else utc(value)


def _text(value: Any) -> str:
    return _utc(value).strftime("%Y-%m-%d %H:%M UTC") if value is not None else "?"
