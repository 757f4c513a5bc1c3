"""The actions a route can run: one module per kind. Add a kind by adding its line here.

Kinds load on first use, so a worker whose routes only log and post webhooks never imports the
email, Teams or Azure ML modules (cold start, memory).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from shared.actions import Action, ActionKinds

_KIND_CLASSES = {
    "log": "handlers.log:LogAction",
    "webhook": "handlers.webhook.action:WebhookAction",
    "email": "handlers.email.action:EmailAction",
    "teams": "handlers.teams:TeamsAction",
    "slack": "handlers.slack:SlackAction",
    "pipeline": "handlers.azureml.pipeline:PipelineAction",
    "batch_endpoint": "handlers.azureml.batch_endpoint:BatchEndpointAction",
    "schedule": "handlers.azureml.schedule:ScheduleAction",
    "github": "handlers.github:GitHubAction",
    "azure_devops": "handlers.azure_devops:AzureDevOpsAction",
    "eventgrid": "handlers.eventgrid:EventGridAction",
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


ACTION_KINDS: ActionKinds = _ActionKinds()
