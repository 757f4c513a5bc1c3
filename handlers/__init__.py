"""The actions a route can run: one module per kind. Add a kind by adding its class here."""

from __future__ import annotations

from handlers.base import Action
from handlers.log import LogAction
from handlers.webhook import WebhookAction

ACTION_KINDS: dict[str, type[Action]] = {cls.kind: cls for cls in (LogAction, WebhookAction)}
