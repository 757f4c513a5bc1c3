"""`webhook`: POST the normalised event as JSON to any URL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from handlers import http
from handlers.base import Action, ActionContext, ActionOutcome
from shared.problems import Problems


class WebhookAction(Action):
    kind = "webhook"
    OPTIONS: ClassVar[Mapping[str, bool]] = {"url": True, "allow_private": False}

    def configure(self, problems: Problems, line: int) -> None:
        self.url = str(self.options.get("url") or "")
        if self.url and (problem := http.check_url(self.url)):
            problems.add(line, f"webhook: url {problem}")
        self.allow_private = bool(self.options.get("allow_private", False))

    @property
    def target(self) -> str:
        return http.safe_target(self.url)

    def run(self, ctx: ActionContext) -> ActionOutcome:
        body = http.json_bytes({"route": ctx.route, "event": ctx.event.to_dict()})
        headers = {"Content-Type": "application/json", "Idempotency-Key": ctx.key}
        response = http.post(
            self.url, content=body, headers=headers, timeout=ctx.remaining(), allow_private=self.allow_private
        )
        return ActionOutcome(detail=f"POST {self.target} -> {response.status_code}")
