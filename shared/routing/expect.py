"""`expect:` on a route, as the engine uses it (validated when routes.yaml is loaded: expect_parse.py).
Two forms:

    expect:                       # after the route's event, expect a follow-up
      within: 6h
      event: {events: [RunStatusChanged, RunCompleted], when: {data.RunStatus: [Completed, Failed, Canceled]}}
      same: [data.RunId]          # what ties the follow-up to the opening event
      at_least: 1                 # follow-ups needed (default 1)
      resolved_late: true         # a follow-up after the deadline sends a "resolved late" notice

    expect:                       # a recurring expectation: no opening event
      every: {days: [mon-fri], by: "07:00", timezone: Europe/Paris}
      since: "19:00"              # the window starts the evening before (default: 24 hours before `by`)
      event: {events: [RunCompleted], when: {data.ExperimentName: churn-nightly}}

A route with `expect:` runs its actions only when an expectation is missed (or resolved late).
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from shared.events.catalog import short_event_type
from shared.events.model import AmlEvent
from shared.routing.conditions import Condition, event_view
from shared.routing.mutes import DAY_NAMES

RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"


@dataclass(frozen=True)
class EventFilter:
    """The events an expectation waits for: their types and `when:` conditions."""

    event_types: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()

    def matches(self, event: AmlEvent) -> bool:
        if event.event_type not in self.event_types:
            return False
        view = event_view(event)
        if event.event_type == RUN_COMPLETED and not any(str(key).lower() == "runstatus" for key in event.data):
            # A RunCompleted event says the run completed without carrying the status: filters such
            # as `data.RunStatus: [Completed, Failed]` over both run event types then read the same.
            view["data"] = {**event.data, "RunStatus": "Completed"}
        return all(condition.holds(view) for condition in self.conditions)

    def describe(self) -> str:
        """For people: `RunStatusChanged or RunCompleted with RunStatus Completed, Failed or Canceled`."""
        types = " or ".join(short_event_type(event_type) for event_type in self.event_types)
        conditions = [_describe_condition(condition) for condition in self.conditions]
        return f"{types} with {' and '.join(conditions)}" if conditions else types


@dataclass(frozen=True)
class FollowUp:
    """After an opening event (the route's `events`/`when`), a follow-up within `within` seconds."""

    within: float
    event: EventFilter
    same: tuple[str, ...] = ()
    at_least: int = 1
    resolved_late: bool = False

    def describe(self) -> str:
        count = f"{self.at_least} × " if self.at_least > 1 else ""
        return f"{count}{self.event.describe()} within {_duration_text(self.within)}"


@dataclass(frozen=True)
class Recurring:
    """On each of `days`, by `by` (minutes after local midnight in `timezone`), `at_least` events
    in the window that starts at `since` (the day before when `since` is not before `by`)."""

    days: frozenset[int]  # weekday numbers (Monday = 0) of the deadlines
    by: int
    timezone: str
    event: EventFilter
    since: int | None = None  # None: 24 hours before `by`
    at_least: int = 1
    resolved_late: bool = False

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def describe(self) -> str:
        count = f"{self.at_least} × " if self.at_least > 1 else ""
        days = _days_text(self.days)
        return f"{count}{self.event.describe()} by {_clock_text(self.by)} {self.timezone} {days}"


Expectation = FollowUp | Recurring


def _describe_condition(condition: Condition) -> str:
    field = condition.path.rsplit(".", 1)[-1]
    if condition.op == "in":
        values = [str(value) for value in condition.value]
        listed = values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"
        return f"{field} {listed}"
    if condition.op == "equals":
        return f"{field} {condition.value}"
    return f"{field} {condition.op.replace('_', ' ')} {condition.value}"


def _duration_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _clock_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _days_text(days: frozenset[int]) -> str:
    if len(days) == 7:
        return "every day"
    return "on " + ", ".join(DAY_NAMES[day] for day in sorted(days))
