"""The actions a route can run: one module per kind. Add a kind by adding its line here.

Kinds load on first use, so a worker whose routes only log and post webhooks never imports the
email, Teams or Azure ML modules (cold start, memory).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from handlers.base import Action

_KIND_CLASSES = {
    "log": "handlers.log:LogAction",
    "webhook": "handlers.webhook:WebhookAction",
    "email": "handlers.email:EmailAction",
    "teams": "handlers.teams:TeamsAction",
    "slack": "handlers.slack:SlackAction",
    "pipeline": "handlers.pipeline:PipelineAction",
    "batch_endpoint": "handlers.batch_endpoint:BatchEndpointAction",
    "schedule": "handlers.schedule:ScheduleAction",
}


class _ActionKinds(Mapping[str, type[Action]]):
    """kind -> Action class, importing each module when its kind is first asked for."""

    def __getitem__(self, kind: str) -> type[Action]:
        module, _, name = _KIND_CLASSES[kind].partition(":")
        return getattr(importlib.import_module(module), name)

    def __iter__(self) -> Iterator[str]:
        return iter(_KIND_CLASSES)

    def __len__(self) -> int:
        return len(_KIND_CLASSES)


ACTION_KINDS: Mapping[str, type[Action]] = _ActionKinds()
