"""The per-route gate before any action runs: whether the route acts on this event now.

In order: an ad-hoc silence or a `mute:` window skips the route's actions; `repeat_interval` skips
them when the same key notified within the interval; `group:` holds the event for a digest. Each
action of a held route is still claimed and recorded in the ledger (`skipped` or `grouped`, with
the reason), so history shows why nothing was sent, and a redelivery finds it settled.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.actions import ActionSkipped
from shared.events.model import AmlEvent
from shared.ledger.records import GROUPED, SKIPPED, LedgerUnavailable
from shared.noise.silences import SilenceStore
from shared.platform.clock import now
from shared.routing.conditions import event_view
from shared.routing.routes import Route
from shared.settings import Settings

# Groups (and mute windows, with zoneinfo) load only for routes that use them: most workers never do.
if TYPE_CHECKING:
    from shared.noise.digests import Admission, DigestStore

logger = logging.getLogger("aml_events.noise.gate")


@dataclass(frozen=True)
class Hold:
    """The route does not act on the event now: each action is recorded with this status and detail."""

    status: str
    detail: str
    record: dict[str, Any] = field(default_factory=dict)
    admission: Admission | None = None


class Gate:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.silences = SilenceStore(settings)

    @functools.cached_property
    def digests(self) -> DigestStore:
        from shared.noise.digests import DigestStore

        return DigestStore(self.settings)

    def hold(self, event: AmlEvent, route: Route) -> Hold | None:
        """None: act now. Raises LedgerUnavailable when the state it needs cannot be read or written."""
        noise = route.noise
        if silence := self._silence(event, route):
            return Hold(SKIPPED, f"silenced: {silence.describe()}", {"silence": silence.id})
        if noise.mutes:
            from shared.routing.mutes import muting_window

            if window := muting_window(noise.mutes, now()):
                return Hold(SKIPPED, f"muted: route window {window.written} ({window.timezone})")
        if noise.repeat_interval is not None and (repeated := self._repeated(event, route)):
            return Hold(SKIPPED, repeated)
        if noise.group is not None:
            admission = self.digests.add(route.name, noise.group, event)
            due = admission.due.strftime("%Y-%m-%d %H:%M:%S UTC")
            return Hold(
                GROUPED, f"grouped in {admission.group}; digest due by {due}",
                {"group": admission.group}, admission,
            )  # fmt: skip
        return None

    def _silence(self, event: AmlEvent, route: Route) -> Any:
        from azure.core.exceptions import AzureError

        try:
            return self.silences.silencing(route.name, event_view(event))
        except AzureError as error:
            # Fail open: an unreadable silence table must not stop alerts (it is logged, not hidden).
            logger.warning("silences unavailable, acting without them: %s", str(error).splitlines()[0])
            return None

    def _repeated(self, event: AmlEvent, route: Route) -> str | None:
        """The reason to skip, when the route's key notified within repeat_interval."""
        from azure.core.exceptions import AzureError

        from shared.noise.counters import store_for

        key = self._repeat_key(event, route)
        try:
            store_for(self.settings).reserve(
                f"repeat|{route.name}", f"{event.id}/{route.name}", event.id,
                cooldown=(key, route.noise.repeat_interval or 0), max_per_day=None,
                wording=("repeat_interval", "notified", "repeat"),
            )  # fmt: skip
        except ActionSkipped as skipped:
            return str(skipped)
        except AzureError as error:
            raise LedgerUnavailable(f"repeat_interval storage unavailable: {str(error).splitlines()[0]}") from error
        return None

    @staticmethod
    def _repeat_key(event: AmlEvent, route: Route) -> str:
        if route.noise.repeat_key is None:
            return event.subject or event.id
        from shared.templates import TemplateProblem, render, template_context  # only routes with `key:`

        try:
            return render(route.noise.repeat_key, template_context(event, route.name))
        except TemplateProblem as problem:
            logger.warning("route %s: key: %s; counting by subject", route.name, problem)
            return event.subject or event.id
