"""The actions a route can run: one module per kind. Add a kind by adding its class here."""

from __future__ import annotations

from handlers.base import Action
from handlers.batch_endpoint import BatchEndpointAction
from handlers.email import EmailAction
from handlers.log import LogAction
from handlers.pipeline import PipelineAction
from handlers.schedule import ScheduleAction
from handlers.slack import SlackAction
from handlers.teams import TeamsAction
from handlers.webhook import WebhookAction

ACTION_KINDS: dict[str, type[Action]] = {
    cls.kind: cls
    for cls in (
        LogAction, WebhookAction, EmailAction, TeamsAction, SlackAction, PipelineAction, BatchEndpointAction,
        ScheduleAction,
    )
}  # fmt: skip
