"""What a message about an event says, whatever the channel: title, status and its tone, the facts
a reader needs, the event's tags and time, and the link into Azure ML studio (or the Azure portal, for
resources studio does not show). Teams, Slack and the email templates all present the same `Notice`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

from shared.events.model import AmlEvent, status_words
from shared.events.workspace import STUDIO

# Statuses of events that are not runs.
_STATUS_BY_TYPE = {
    "ModelRegistered": "Registered",
    "ModelDeployed": "Deployed",
    "DatasetDriftDetected": "Drift detected",
}
_BAD = frozenset({"Failed", "Canceled", "NotResponding", "Missed", "NonCompliant", "Conflict", "Error"})
_GOOD = frozenset({"Completed", "Registered", "Deployed", "Succeeded", "Compliant"})
# Facts every member of a digest shares with the digest itself: left out of each member's line.
_SAME_IN_A_DIGEST = frozenset({"Workspace", "Experiment", "Run", "Model", "Status", "Storage account", "Container"})
STUDIO_LINK, PORTAL_LINK = "Open in Azure ML studio", "Open in the Azure portal"
# Where each event type keeps the tags its authors wrote.
_TAG_FIELDS = ("run_tags", "model_tags", "service_tags")


@dataclass(frozen=True)
class Notice:
    title: str
    status: str
    tone: str  # "bad", "good", "warning" or "neutral": the colour a channel gives the status
    facts: tuple[tuple[str, str], ...]  # (label, value), most important first; includes the time
    tags: dict[str, str]
    when: str  # the event time, "2025-03-04 11:40:00 UTC", or ""
    url: str  # the item in Azure ML studio, or the resource in the Azure portal
    members: tuple[Notice, ...] = ()  # a digest's events, each with its own facts
    scope: str = ""  # where it happened, in a word: the workspace, else the storage account, resource group…

    @property
    def link_label(self) -> str:
        return STUDIO_LINK if self.url.startswith(STUDIO) else PORTAL_LINK

    @property
    def status_words(self) -> str:
        """The status as words within a sentence or a subject: `not started`, `drift detected`."""
        return self.status.lower()

    def rows(self) -> list[tuple[str, str]]:
        """The facts, then the tags on one line: what a card or message shows as a table."""
        if not self.tags:
            return list(self.facts)
        return [*self.facts, ("Tags", ", ".join(f"{key}={value}" for key, value in sorted(self.tags.items())))]

    @classmethod
    def of(cls, event: AmlEvent) -> Notice:
        written = str(getattr(event, "status", None) or _STATUS_BY_TYPE.get(event.short_type, event.short_type))
        status = status_words(written).capitalize()  # `NotStarted` reads "Not started"
        tone = (
            "bad" if written in _BAD
            else "good" if written in _GOOD
            else "warning" if event.short_type == "DatasetDriftDetected" or written == "Resolved late"
            else "neutral"
        )  # fmt: skip
        when = event.event_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if event.event_time else ""
        details = event.enrichment.facts() if event.enrichment is not None else []
        facts = [(label, value) for label, value in [*event.facts(), *details] if value]
        if when:
            facts.append(("Time", when))
        members = tuple(cls.of(member) for member in getattr(event, "members", ()))
        tags = {} if members else _tags(event)  # a digest's own fields are its first member's
        return cls(event.title, status, tone, tuple(facts), tags, when, event.studio_url, members, event.scope)

    def own_facts(self) -> list[tuple[str, str]]:
        """The facts of a digest's member that its title and the digest do not already say."""
        return [(label, value) for label, value in self.facts if label not in _SAME_IN_A_DIGEST]

    def summary(self) -> str:
        """One line for a digest's list of members."""
        return " · ".join([self.title, *(value for _, value in self.own_facts())])


def _tags(event: AmlEvent) -> dict[str, str]:
    for name in _TAG_FIELDS:
        tags: dict[str, Any] | None = event.fields.get(name)
        if tags:
            return {str(key): "" if value is None else str(value) for key, value in tags.items()}
    return {}
