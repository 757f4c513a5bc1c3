"""A digest: the events one group collected, delivered to the route's actions as one event.

`DigestEvent` is an `AmlEvent`, so every action kind takes it unchanged: its `id` is the digest's
(the ledger key of each action, so a digest is delivered exactly once), its type, `data` and `fields`
are those of its first member (templates written for single events still render), and `members`
lists every event in it. Notices, cards, emails and the webhook body list the members.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

from shared.events.model import AmlEvent

DIGEST_PREFIX = "digest:"


@dataclass(frozen=True)
class DigestEvent(AmlEvent):
    route: str = ""
    group: tuple[tuple[str, str], ...] = ()  # (path, value) of the route's `group.by`
    members: tuple[AmlEvent, ...] = ()

    @classmethod
    def of(cls, digest_id: str, route: str, group: tuple[tuple[str, str], ...], members: list[AmlEvent]) -> DigestEvent:
        ordered = sorted(members, key=lambda event: (event.event_time is None, event.event_time, event.id))
        first = ordered[0]
        return cls(
            id=digest_id,
            event_type=first.event_type,
            subject=f"digest/{route}",
            topic=first.topic,
            event_time=ordered[-1].event_time,
            data=first.data,
            data_version=first.data_version,
            schema=first.schema,
            workspace=first.workspace,
            fields=first.fields,
            route=route,
            group=group,
            members=tuple(ordered),
        )

    @property
    def status(self) -> str:
        statuses = {str(getattr(member, "status", "") or member.short_type) for member in self.members}
        return statuses.pop() if len(statuses) == 1 else "Mixed"

    @property
    def title(self) -> str:
        scope = ", ".join(f"{_label(path)} {value}" for path, value in self.group)
        what = f"{len(self.members)} {self.short_type} events"
        return f"{what} ({self.status}) for {scope}" if scope else f"{what} ({self.status})"

    def facts(self) -> list[tuple[str, str]]:
        times = [member.event_time for member in self.members if member.event_time]
        facts = [*super().facts()[:1], ("Events", str(len(self.members)))]
        facts += [(_label(path), value) for path, value in self.group]
        if times:
            facts.append(("First", min(times).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")))
        return facts

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "digest": {
                "route": self.route,
                "group": dict(self.group),
                "count": len(self.members),
                "members": [member.to_dict() for member in self.members],
            },
        }


def _label(path: str) -> str:
    """`data.ExperimentName` -> `ExperimentName`: what a reader calls a group's field."""
    return path.rsplit(".", 1)[-1]
