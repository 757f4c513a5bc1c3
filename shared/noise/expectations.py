"""Open expectations in Table Storage (EXPECT_TABLE), laid out so that the timer reads only what is due.

Two kinds of partition:
- one per expectation, `x-<route>|<hash>`: the hash of the route and its `same:` values (a follow-up
  expectation) or of the route and the window's date (a recurring one). It holds the `state` row
  (`status` open / fired / closed / late, `seq` counting the expectation's openings, `due`, the
  opening event, `fire_until` while the timer delivers it) and, for `at_least`, a `seen|<seq>|<event>`
  row per matching event (keyed by event id: a redelivered event counts once);
- one per minute of due time, `due-YYYYMMDDHHMM`, with a row per expectation (or expired state to
  remove) falling due in that minute. The timer reads the partitions from the start up to the
  current minute: a range of partition keys, so it reads the due rows and nothing else, however many
  expectations are open. A due row leaves its partition once handled.

Every change to a state row is guarded by its etag, so an opening, a follow-up and the timer racing
on one expectation settle on one outcome: the loser reads the row again and sees what happened. The
due row is written before the state row, so a crash between them leaves a due row that points at
nothing (dropped when read), never an open expectation that nothing will fire.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.events.expectation import ExpectationMissed
from shared.events.model import AmlEvent, EventRejected
from shared.events.parse import parse_event
from shared.ledger.records import LedgerUnavailable
from shared.platform.clock import now as clock_now
from shared.platform.clock import utc
from shared.platform.errors import first_line
from shared.platform.storage import insert_entity
from shared.platform.tables import table_key
from shared.settings import Settings

# The `expect:` option and its windows (zoneinfo) load only where a route has `expect:`: a first event
# imports this module (its step statuses) and nothing of them.
if TYPE_CHECKING:
    from shared.routing.expect import FollowUp, Recurring
    from shared.routing.expect_windows import Window

logger = logging.getLogger("aml_events.noise.expectations")

STATE_ROW = "state"
DUE_PREFIX = "due-"
OPEN, FIRED, CLOSED, LATE = "open", "fired", "closed", "late"
FIRE, COLLECT = "fire", "collect"
# What an event did to an expectation: the status of its report (settled: nothing left to do).
OPENED, ALREADY_OPEN, COUNTED, CLOSED_IN_TIME, CLOSED_LATE, IGNORED = "opened", "open", "counted", "closed", "late", \
    "ignored"  # fmt: skip
STEP_STATUSES = (OPENED, ALREADY_OPEN, COUNTED, CLOSED_IN_TIME, CLOSED_LATE, IGNORED)
RETENTION = timedelta(days=2)  # closed state is kept this long: Event Grid redelivers for 24 hours
RETRY_SECONDS = 60.0  # a missed expectation whose actions failed is fired again this much later
MAX_FIRE_TRIES = 5
_ETAG_ATTEMPTS = 20
_ENVELOPE_KEYS = ("id", "eventType", "subject", "topic", "eventTime", "data", "dataVersion")
_MISSING_VALUE = "(none)"


@dataclass(frozen=True)
class Due:
    """A due row: the expectation (partition and opening number) to fire, or expired state to remove."""

    partition: str  # its own `due-…` partition
    row: str
    state: str  # the expectation's partition
    seq: int
    kind: str  # FIRE or COLLECT
    route: str


@dataclass(frozen=True)
class Step:
    """What an event did to one route's expectation, for the report and the record."""

    route: str
    status: str  # opened, open (already), counted, closed, late, ignored
    detail: str
    late: ExpectationMissed | None = None  # the `resolved_late` notice to deliver


def bucket(moment: datetime) -> str:
    return DUE_PREFIX + moment.astimezone(UTC).strftime("%Y%m%d%H%M")


def expectation_id(route: str, partition: str, seq: int) -> str:
    """The synthetic event's id: the ledger key of the missed expectation's actions."""
    return f"expectation:{route}:{partition[-16:]}:{seq}"


class ExpectationStore:
    def __init__(self, settings: Settings, now: Callable[[], datetime] = clock_now) -> None:
        self.settings = settings
        self.now = now
        self.table_name = settings.expect_table
        self._armed: set[tuple[str, str, str]] = set()

    @property
    def table(self) -> Any:
        from shared.platform.storage import existing_table

        return existing_table(self.settings, self.table_name)

    # ---- follow-up expectations -------------------------------------------------------------------

    def open(self, route: str, spec: FollowUp, event: AmlEvent) -> Step:
        """The route's event arrived: expect a follow-up within `spec.within` of now."""
        at = self.now()
        values = same_values(event, spec.same)
        partition = _partition(route, values)
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
                "opening": _envelope(event), "same": json.dumps(values), "fire_tries": 0,
            }  # fmt: skip

        self._update_state(partition, change)
        status, detail = outcome["step"]
        return Step(route, status, detail)

    def follow_up(self, route: str, spec: FollowUp, event: AmlEvent) -> Step:
        """A follow-up arrived: close the expectation it answers (silently before the deadline)."""
        at = self.now()
        values = same_values(event, spec.same)
        partition = _partition(route, values)
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
            row = self._state(_window_partition(route, passed)) if passed else None
            if passed is None or row is None or row.get("status") not in (OPEN, FIRED):
                return Step(route, "ignored", "outside the expectation's windows")
            return self._close(route, _window_partition(route, passed), row, spec, event, at)
        partition = self._ensure_window(route, spec, window)
        self._remember_reference(route, event)
        row = self._state(partition)
        if row is None or row.get("status") not in (OPEN, FIRED):
            return Step(route, "ignored", f"window {window.key} is already settled")
        return self._close(route, partition, row, spec, event, at)

    def _ensure_window(self, route: str, spec: Recurring, window: Window) -> str:
        partition = _window_partition(route, window)
        self._add_due(window.end, partition, 1, FIRE, route)
        self._insert_ignoring_existing({
            "PartitionKey": partition, "RowKey": STATE_ROW, "route": route, "kind": "recurring", "status": OPEN,
            "seq": 1, "since": window.start, "due": window.end, "window": f"{window.key} ({spec.timezone})",
            "fire_tries": 0,
        })  # fmt: skip
        return partition

    def _remember_reference(self, route: str, event: AmlEvent) -> None:
        """The last matching event per route: the workspace and experiment a missed window links to."""
        entity = {"PartitionKey": f"ref-{table_key(route)}", "RowKey": "last", "event": _envelope(event)}
        self._call("recording an expectation's event", self.table.upsert_entity, entity)

    def _reference(self, route: str) -> AmlEvent | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self.table.get_entity(f"ref-{table_key(route)}", "last")
        except ResourceNotFoundError:
            return None
        return _event_from(entity.get("event"))

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

    def _seen(self, partition: str, seq: int) -> int:
        prefix = f"seen|{seq:06d}|"
        rows = self.table.query_entities(
            "PartitionKey eq @p and RowKey ge @lo and RowKey lt @hi",
            parameters={"p": partition, "lo": prefix, "hi": prefix[:-1] + "}"}, select=["RowKey"],
        )  # fmt: skip
        return sum(1 for _ in rows)

    # ---- the timer --------------------------------------------------------------------------------

    def due(self) -> list[Due]:
        """The due rows of every minute up to now: only the partitions that are due are read."""
        rows = self._call("reading due expectations", lambda: list(self.table.query_entities(
            "PartitionKey ge @first and PartitionKey le @last",
            parameters={"first": DUE_PREFIX, "last": bucket(self.now())},
        )))  # fmt: skip
        return [Due(row["PartitionKey"], row["RowKey"], row["state"], int(row["seq"]), row["kind"], row["route"])
                for row in rows]  # fmt: skip

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

    # ---- rows -------------------------------------------------------------------------------------

    def _as_event(
        self, route: str, partition: str, row: dict[str, Any], spec: FollowUp | Recurring,
        late: AmlEvent | None = None,
    ) -> ExpectationMissed:  # fmt: skip
        seq, at_least = int(row["seq"]), spec.at_least
        opening = _event_from(row.get("opening"))
        reference = None if opening else self._reference(route)
        seen = self._seen(partition, seq) if at_least > 1 else 0
        return ExpectationMissed.of(
            expectation_id(route, partition, seq), route, spec.describe(), _utc(row.get("since")),
            _utc(row.get("due")), opening=opening, window=row.get("window", ""), seen=seen, at_least=at_least,
            late=late, reference=reference,
        )  # fmt: skip

    def _state(self, partition: str) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return dict(self._call("reading an expectation", self.table.get_entity, partition, STATE_ROW))
        except ResourceNotFoundError:
            return None

    def _update_state(self, partition: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> None:
        """Apply `change` to the state row (None: absent) under its etag, reading again when another
        writer won; `change` returns the row to write, or None to write nothing."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

        for _ in range(_ETAG_ATTEMPTS):
            try:
                existing = self._call("reading an expectation", self.table.get_entity, partition, STATE_ROW)
                row: dict[str, Any] | None = dict(existing)
                etag = existing.metadata["etag"]
            except ResourceNotFoundError:
                row, etag = None, None
            written = change(row)
            if written is None:
                return
            try:
                if etag is None:
                    self._call("opening an expectation", insert_entity, self.table, written)
                else:
                    self._call("updating an expectation", self.table.update_entity, written, mode="replace",
                               etag=etag, match_condition=MatchConditions.IfNotModified)  # fmt: skip
                return
            except (ResourceExistsError, ResourceModifiedError):
                continue
        raise LedgerUnavailable(f"expectation {partition}: too many concurrent writers; Event Grid will redeliver")

    def _add_due(self, due: datetime, partition: str, seq: int, kind: str, route: str) -> None:
        self._insert_ignoring_existing({"PartitionKey": bucket(due), "RowKey": _due_row(partition, seq, kind),
                                        "state": partition, "seq": seq, "kind": kind, "route": route})  # fmt: skip

    def _remove_due(self, due: datetime, partition: str, seq: int, kind: str) -> None:
        self._delete(bucket(due), _due_row(partition, seq, kind))

    def _delete_due(self, due: Due) -> None:
        self._delete(due.partition, due.row)

    def _delete(self, partition: str, row: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self._call("removing an expectation row", self.table.delete_entity, partition, row)
        except ResourceNotFoundError:
            pass

    def _insert_ignoring_existing(self, entity: dict[str, Any]) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            self._call("writing an expectation", insert_entity, self.table, entity)
        except ResourceExistsError:
            pass

    @staticmethod
    def _call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Storage failures become LedgerUnavailable (Event Grid redelivers; the timer tries next minute);
        conflicts and absences are the callers' to handle."""
        from azure.core.exceptions import (
            AzureError,
            ResourceExistsError,
            ResourceModifiedError,
            ResourceNotFoundError,
        )

        try:
            return fn(*args, **kwargs)
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            raise
        except AzureError as error:
            raise LedgerUnavailable(f"expectation storage unavailable while {what}: {first_line(error)}") from error


def same_values(event: AmlEvent, paths: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    from shared.routing.conditions import event_view, resolve

    view = event_view(event)
    values = []
    for path in paths:
        value = resolve(view, path)
        values.append((path, str(value) if isinstance(value, (str, int, float, bool)) else _MISSING_VALUE))
    return tuple(values)


def _partition(route: str, values: tuple[tuple[str, str], ...]) -> str:
    digest = hashlib.sha256(json.dumps([route, values]).encode("utf-8")).hexdigest()[:32]
    return "x-" + table_key(f"{route}|{digest}")


def _window_partition(route: str, window: Window) -> str:
    return _partition(route, (("window", window.key),))


def _due_row(partition: str, seq: int, kind: str) -> str:
    return f"{partition}|{seq}|{kind}"


def _event_moment(event: AmlEvent, at: datetime) -> datetime:
    """When the event happened: its own time, unless missing or ahead of the clock (then: now)."""
    if event.event_time is None or event.event_time.tzinfo is None:
        return at
    return min(event.event_time.astimezone(UTC), at)


def _envelope(event: AmlEvent) -> str:
    written = event.to_dict()
    return json.dumps({key: written[key] for key in _ENVELOPE_KEYS}, default=str)


def _event_from(text: Any) -> AmlEvent | None:
    if not text:
        return None
    try:
        return parse_event(json.loads(text))
    except (ValueError, EventRejected) as error:  # written by this app: only a bug gets here
        logger.error("expectation event cannot be read back: %s", error)
        return None


def _utc(value: Any) -> datetime:
    """A stored time in UTC; a missing one is the end of time (never due)."""
    return datetime.max.replace(tzinfo=UTC) if value is None else utc(value)


def _text(value: Any) -> str:
    return _utc(value).strftime("%Y-%m-%d %H:%M UTC") if value is not None else "?"
