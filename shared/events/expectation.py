"""`ExpectationMissed`: the synthetic event a route with `expect:` acts on when what it expected did
not happen by its deadline (and `ExpectationResolvedLate`, when the follow-up came after all).

It is an `AmlEvent`, so every action kind takes it unchanged. Its `id` names the expectation (the
ledger key of each action: one missed expectation acts once). For a follow-up expectation, `data`,
`fields`, workspace and studio link are the opening event's (a template written for the opening
event still renders: `event.data.RunId`); a recurring one has no opening event and empty `data`.
Its title and facts say plainly what did not happen and since when; templates and webhook bodies
also get `event.expectation` (route, expected, since, deadline, window, opening event).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.events.model import AmlEvent
from shared.events.workspace import Workspace

EXPECTATION_MISSED = "ExpectationMissed"
EXPECTATION_RESOLVED_LATE = "ExpectationResolvedLate"
EXPECTATION_TYPES = (EXPECTATION_MISSED, EXPECTATION_RESOLVED_LATE)
NO_WORKSPACE = Workspace("", "", "")


def utc_text(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else ""


@dataclass(frozen=True)
class ExpectationMissed(AmlEvent):
    route: str = ""
    expected: str = ""  # what should have happened, in words (`Expectation.describe()`)
    since: datetime | None = None  # when the wait began: the opening event's delivery, or the window's start
    deadline: datetime | None = None
    opening: AmlEvent | None = None  # the event that opened a follow-up expectation
    window: str = ""  # a recurring expectation's window, e.g. `2026-03-30 (Europe/Paris)`
    seen: int = 0  # matching events that did arrive (fewer than `at_least`)
    at_least: int = 1
    late: AmlEvent | None = None  # ExpectationResolvedLate: the follow-up that came after the deadline
    reference: AmlEvent | None = None  # recurring: the last matching event seen, for the studio link

    @classmethod
    def of(
        cls,
        expectation_id: str,
        route: str,
        expected: str,
        since: datetime | None,
        deadline: datetime | None,
        *,
        opening: AmlEvent | None = None,
        window: str = "",
        seen: int = 0,
        at_least: int = 1,
        late: AmlEvent | None = None,
        reference: AmlEvent | None = None,
    ) -> ExpectationMissed:
        source = opening or reference
        return cls(
            id=f"{expectation_id}/resolved-late" if late is not None else expectation_id,
            event_type=EXPECTATION_RESOLVED_LATE if late is not None else EXPECTATION_MISSED,
            # the opening event's subject (the run): what `repeat_interval` counts by default, per run
            subject=opening.subject if opening else f"expectations/{route}",
            topic=source.topic if source else "",
            event_time=late.event_time if late is not None else deadline,
            data=opening.data if opening else {},
            data_version="",
            schema=opening.schema if opening else "EventGrid",
            workspace=source.workspace if source else NO_WORKSPACE,
            fields=opening.fields if opening else {},
            route=route,
            expected=expected,
            since=since,
            deadline=deadline,
            opening=opening,
            window=window,
            seen=seen,
            at_least=at_least,
            late=late,
            reference=reference,
        )

    @property
    def resolved_late(self) -> bool:
        return self.late is not None

    @property
    def status(self) -> str:
        return "Resolved late" if self.resolved_late else "Missed"

    @property
    def title(self) -> str:
        if self.late is not None:
            delay = _delay_text(self.deadline, self.late.event_time)
            return f"Resolved late: {self.late.title}{delay} ({self.route})"
        missing = f"no {self.expected} since {utc_text(self.since)} ({self.route})"
        return f"{self.opening.title}: {missing}" if self.opening else missing[0].upper() + missing[1:]

    @property
    def studio_url(self) -> str:
        if self.opening is not None:
            return self.opening.studio_url
        if self.reference is not None and getattr(self.reference, "experiment_id", None):
            return self.workspace.studio_url(f"experiments/id/{self.reference.experiment_id}")
        return "" if self.workspace is NO_WORKSPACE else self.workspace.studio_url("")

    def facts(self) -> list[tuple[str, str]]:
        facts = [("Expected", self.expected), ("Since", utc_text(self.since)), ("Deadline", utc_text(self.deadline))]
        if self.window:
            facts.append(("Window", self.window))
        if self.at_least > 1:
            facts.append(("Seen", f"{self.seen} of {self.at_least}"))
        if self.late is not None:
            facts.append(("Arrived", utc_text(self.late.event_time)))
        facts.append(("Route", self.route))
        if self.opening is not None:
            facts += [(label, value) for label, value in self.opening.facts() if label != "Status"]
            facts.append(("Opened by", f"{self.opening.short_type} {getattr(self.opening, 'status', '')}".strip()))
        elif self.workspace is not NO_WORKSPACE:
            facts.append(("Workspace", self.workspace.name))
        return facts

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "expectation": {
                "route": self.route,
                "status": self.status,
                "expected": self.expected,
                "since": self.since.isoformat() if self.since else None,
                "deadline": self.deadline.isoformat() if self.deadline else None,
                "sinceText": utc_text(self.since),
                "deadlineText": utc_text(self.deadline),
                "window": self.window,
                "seen": self.seen,
                "atLeast": self.at_least,
                "opening": self.opening.to_dict() if self.opening else None,
                "late": self.late.to_dict() if self.late else None,
            },
        }


def example_expectations(opening: AmlEvent) -> dict[str, ExpectationMissed]:
    """A missed and a resolved-late expectation opened by `opening`: what templates are checked against."""
    since = opening.event_time or datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
    deadline = since + timedelta(hours=6)
    expected = "RunStatusChanged or RunCompleted with RunStatus Completed, Failed or Canceled within 6h"
    missed = ExpectationMissed.of("expectation:example:0:1", "example", expected, since, deadline, opening=opening)
    late = replace(opening, event_time=deadline + timedelta(hours=1))
    resolved = ExpectationMissed.of(
        "expectation:example:0:1", "example", expected, since, deadline, opening=opening, late=late
    )
    return {EXPECTATION_MISSED: missed, EXPECTATION_RESOLVED_LATE: resolved}


def _delay_text(deadline: datetime | None, arrived: datetime | None) -> str:
    if deadline is None or arrived is None or arrived <= deadline:
        return ""
    minutes = int((arrived - deadline).total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f", {hours}h{minutes:02d} after the deadline" if hours else f", {minutes} min after the deadline"
