"""`log`: one structured log line with the event and the route. Useful alone and as a first route."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import ClassVar

from shared.actions import Action, ActionContext, ActionOutcome, Preview, PreviewPart, pretty_json
from shared.problems import Problems

logger = logging.getLogger("aml_events.actions.log")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class LogAction(Action):
    kind = "log"
    OPTIONS: ClassVar[Mapping[str, bool]] = {"level": False, "message": False}

    def configure(self, problems: Problems, line: int) -> None:
        level = str(self.options.get("level", "info")).lower()
        if level not in _LEVELS:
            problems.add(line, f"log: level {level!r} is not one of {', '.join(_LEVELS)}")
        self.level = _LEVELS.get(level, logging.INFO)

    @property
    def target(self) -> str:
        return "log"

    def _message(self, ctx: ActionContext) -> str:
        return self.options.get("message") or ctx.event.title

    def settled_outcome(self, ctx: ActionContext) -> ActionOutcome:
        # The line goes to a batching log exporter, which a crashed worker loses anyway: the ledger
        # record is the durable trace, so it is written first, in one write.
        return ActionOutcome(detail=f"logged: {self._message(ctx)}")

    def preview(self, ctx: ActionContext) -> Preview:
        level = logging.getLevelName(self.level).lower()
        return Preview("text", f"a {level} log line: {self._message(ctx)}",
                       (PreviewPart("line.json", pretty_json(self._line(ctx))),))  # fmt: skip

    def run(self, ctx: ActionContext) -> ActionOutcome:
        logger.log(self.level, json.dumps(self._line(ctx), default=str))
        return self.settled_outcome(ctx)

    def _line(self, ctx: ActionContext) -> dict[str, object]:
        event = ctx.event
        return {
            "route": ctx.route,
            "event_id": event.id,
            "event_type": event.event_type,
            "workspace": event.scope,
            "subject": event.subject,
            "message": self._message(ctx),
            "facts": dict(event.facts()),
            "studio_url": event.studio_url,
        }
