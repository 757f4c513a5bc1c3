"""What every action kind shares: its options, the context it runs in, and how it reports back.

Each action kind (handlers/, listed in handlers/__init__.py) defines an `Action` subclass that validates
its options when routes.yaml is loaded (so mistakes surface at deploy time, not at 3 a.m.) and
runs against one event.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from shared.events.model import AmlEvent
from shared.problems import Problems
from shared.settings import Settings


@dataclass(frozen=True)
class ActionContext:
    event: AmlEvent
    route: str
    position: int
    key: str  # the ledger key: stable across redeliveries, so usable as an idempotency key
    deadline: float  # time.monotonic() by which the action must have finished
    settings: Settings
    attempt: int = 1

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


@dataclass
class ActionOutcome:
    detail: str  # what happened, for people: "POST hooks.example.com/alerts -> 200"
    record: dict[str, Any] = field(default_factory=dict)  # extra facts kept in the ledger


@dataclass(frozen=True)
class PreviewPart:
    name: str  # the file it is written to: "subject.txt", "body.html", "message.json"
    content: str


@dataclass(frozen=True)
class Preview:
    """What an action would do for one event, rendered without doing it (scripts/preview.py)."""

    view: str  # how the preview page shows it: email, adaptive-card, slack, http or text
    summary: str  # one line
    parts: tuple[PreviewPart, ...] = ()
    shown: str = ""  # the text a reader sees, where the parts are markup (a card's Markdown, Slack's mrkdwn)

    def part(self, name: str) -> str | None:
        return next((part.content for part in self.parts if part.name == name), None)

    def text(self) -> str:
        """Everything it would say: what route tests' `renders:` fragments are looked for in."""
        return "\n".join([self.summary, self.shown, *(part.content for part in self.parts)])


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n"


class ActionFailed(Exception):
    """The action did not take effect. `retryable` failures are tried again within the budget."""

    def __init__(self, message: str, *, retryable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class ActionSkipped(Exception):
    """The action decided not to act (a guardrail, a silence); recorded as `skipped` with the reason."""


class Action(ABC):
    kind: ClassVar[str]
    #: option name -> required?
    OPTIONS: ClassVar[Mapping[str, bool]] = {}

    def __init__(
        self, options: Mapping[str, Any], problems: Problems, line: int, event_types: tuple[str, ...] = ()
    ) -> None:
        self.options = options
        self.event_types = event_types  # the route's event types: templates are checked against examples of each
        for name in options:
            if name not in self.OPTIONS:
                allowed = ", ".join(sorted(self.OPTIONS)) or "none"
                problems.add(line, f"{self.kind}: unknown option {name!r} (allowed: {allowed})")
        for name, required in self.OPTIONS.items():
            if required and options.get(name) in (None, ""):
                problems.add(line, f"{self.kind}: option {name!r} is required")
        self.configure(problems, line)

    def configure(self, problems: Problems, line: int) -> None:
        """Validate and prepare options; report problems instead of raising."""

    @property
    def target(self) -> str:
        """Where the action goes, safe to log (no secrets, no query strings)."""
        return ""

    @property
    def secrets(self) -> tuple[str, ...]:
        """Texts of the action's configuration that no record or log line may show (a chat webhook's
        token): the engine replaces them in every outcome it records or reports."""
        return ()

    def redact(self, text: str) -> str:
        for secret in self.secrets:  # longest first, so a part never leaves the rest of a whole showing
            text = text.replace(secret, "[secret]")
        return text

    def deep_check(self, problems: Problems, line: int) -> None:
        """Slower checks that may import heavy SDKs (e.g. a pipeline YAML through azure.ai.ml): run by
        scripts/validate_routes.py before deploying, never when a worker loads routes (cold start)."""

    def settled_outcome(self, ctx: ActionContext) -> ActionOutcome | None:
        """The outcome, known before running, of a kind that cannot fail and leaves nothing durable of
        its own (a log line): the ledger records it in the claim's one write, then `run` runs. None (most
        kinds): claim, run, then record what happened (two writes)."""
        return None

    def preview(self, ctx: ActionContext) -> Preview:
        """What `run` would send, rendered without sending (no network, no storage, no SDK call).
        Kinds that send a message override it; the default names the action and its target."""
        return Preview("text", f"would run {self.kind} -> {self.target or '-'}")

    @abstractmethod
    def run(self, ctx: ActionContext) -> ActionOutcome: ...


# kind -> Action class: what the routes parser builds each action with (handlers.ACTION_KINDS).
ActionKinds = Mapping[str, type[Action]]
