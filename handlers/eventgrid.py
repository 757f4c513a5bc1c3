"""`eventgrid`: publish the event to an Event Grid custom topic or namespace topic, with azure-eventgrid's
`EventGridPublisherClient` (imported when the first such action runs: cold start).

Options: `endpoint` (the topic endpoint, https://<topic>.<region>-1.eventgrid.azure.net/api/events, or the
namespace's https://<namespace>.<region>-1.eventgrid.azure.net with `namespace_topic`), `schema`
(`cloudevents`, the default, or `eventgrid`; namespace topics take CloudEvents only), `key` (an access key
setting; the app's managed identity, with EventGrid Data Sender on the topic, otherwise), `body` (a template
producing the JSON `data`; default: the normalised event), `allow_private`.

The published event's id is derived from the ledger key, so it is the same on every redelivery and a
subscriber can de-duplicate on it.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from handlers.common import http
from handlers.common.templated_json import body_template
from shared.actions import Action, ActionContext, ActionFailed, ActionOutcome, Preview, PreviewPart, pretty_json
from shared.problems import Problems

SCHEMAS = ("cloudevents", "eventgrid")
MAX_EVENT_BYTES = 1024 * 1024  # Event Grid refuses an event (and a request) over 1 MB
# Published ids: uuid5(this namespace, ledger key). Fixed forever: subscribers may store the ids.
ID_NAMESPACE = uuid.UUID("6d1f0f4e-5b7a-4c55-9a51-3e1d7f0c2a90")
_clients: dict[tuple[str, str, str, str], Any] = {}
_clients_lock = threading.Lock()


def event_id(ledger_key: str) -> str:
    """The id of the event published for this ledger key: the same on every redelivery."""
    return str(uuid.uuid5(ID_NAMESPACE, ledger_key))


class EventGridAction(Action):
    kind = "eventgrid"
    OPTIONS: ClassVar[Mapping[str, bool]] = {
        "endpoint": True,
        "schema": False,
        "key": False,
        "namespace_topic": False,
        "body": False,
        "allow_private": False,
    }

    def configure(self, problems: Problems, line: int) -> None:
        self.endpoint = str(self.options.get("endpoint") or "")
        if self.endpoint and (problem := http.check_url(self.endpoint)):
            problems.add(line, f"eventgrid: endpoint {problem}")
        self.schema = str(self.options.get("schema") or "cloudevents").lower()
        if self.schema not in SCHEMAS:
            problems.add(line, f"eventgrid: schema must be one of {', '.join(SCHEMAS)}, got {self.schema!r}")
        self.namespace_topic = str(self.options.get("namespace_topic") or "")
        if self.namespace_topic and self.schema != "cloudevents":
            problems.add(line, "eventgrid: namespace topics take CloudEvents only (schema: cloudevents)")
        self.key = str(self.options.get("key") or "")
        self.allow_private = bool(self.options.get("allow_private", False))
        self.body_template = body_template(self, problems, line)

    @property
    def target(self) -> str:
        topic = f"/topics/{self.namespace_topic}" if self.namespace_topic else ""
        return http.safe_target(self.endpoint) + topic

    def run(self, ctx: ActionContext) -> ActionOutcome:
        if not self.allow_private:
            http.guard_destination(self.endpoint)
        event = self._event(ctx)
        size = len(json.dumps(event, default=str).encode())
        if size > MAX_EVENT_BYTES:
            raise ActionFailed(
                f"eventgrid: the event is {size} bytes; Event Grid takes at most {MAX_EVENT_BYTES} (1 MB): "
                "send less with body:"
            )
        from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError

        client = self._client(ctx)
        try:
            client.send(
                [self._sdk_event(event)],
                retry_total=0,  # retries are the engine's, within the invocation budget
                connection_timeout=min(5.0, max(ctx.remaining(), 0.001)),
                read_timeout=max(ctx.remaining(), 0.001),
            )
        except ResourceNotFoundError as error:
            raise ActionFailed(f"publish to {self.target} -> not found: {_said(error)} (check endpoint"
                               f"{' and namespace_topic' if self.namespace_topic else ''})") from None  # fmt: skip
        except HttpResponseError as error:
            raise self._failure(error) from None
        except AzureError as error:  # no connection, no answer in time
            raise ActionFailed(
                f"publish to {self.target}: {type(error).__name__}: {_said(error)}", retryable=True
            ) from None
        return ActionOutcome(
            detail=f"published {event['id']} to {self.target} ({self.schema})",
            record={"published_id": event["id"]},
        )

    def preview(self, ctx: ActionContext) -> Preview:
        event = self._event(ctx)
        return Preview("text", f"publish {event['id']} to {self.target} ({self.schema})",
                       (PreviewPart("event.json", pretty_json(event)),))  # fmt: skip

    def _event(self, ctx: ActionContext) -> dict[str, Any]:
        source = ctx.event
        data = (
            source.to_dict() if self.body_template is None else json.loads(self.body_template.render(source, ctx.route))
        )
        when = source.event_time.isoformat() if source.event_time else None
        if self.schema == "eventgrid":
            return {"id": event_id(ctx.key), "subject": source.subject or source.topic, "eventType": source.event_type,
                    "eventTime": when, "data": data, "dataVersion": source.data_version or "1"}  # fmt: skip
        return {"id": event_id(ctx.key), "source": source.topic, "type": source.event_type, "subject": source.subject,
                "time": when, "data": data, "specversion": "1.0"}  # fmt: skip

    def _sdk_event(self, event: dict[str, Any]) -> Any:
        from datetime import datetime

        stamp = event.get("time") or event.get("eventTime")
        when = datetime.fromisoformat(stamp) if stamp else None
        if self.schema == "eventgrid":
            from azure.eventgrid import EventGridEvent

            return EventGridEvent(event["subject"], event["eventType"], event["data"], event["dataVersion"],
                                  id=event["id"], event_time=when)  # fmt: skip
        from azure.core.messaging import CloudEvent

        return CloudEvent(event["source"], event["type"], data=event["data"], id=event["id"],
                          subject=event["subject"] or None, time=when)  # fmt: skip

    def _client(self, ctx: ActionContext) -> Any:
        client_id = ctx.settings.client_id
        cache_key = (self.endpoint, self.key, self.namespace_topic, client_id)
        with _clients_lock:
            client = _clients.get(cache_key)
            if client is None:
                from azure.eventgrid import EventGridPublisherClient

                # The SDK hands per-call transport options to its CloudEvent model too, which logs a warning
                # per option and event ("... is not a known attribute ... and will be ignored").
                logging.getLogger("azure.eventgrid._legacy._generated._serialization").setLevel(logging.ERROR)
                client = _clients[cache_key] = EventGridPublisherClient(
                    self.endpoint, self._credential(client_id), namespace_topic=self.namespace_topic or None
                )
            return client

    def _credential(self, client_id: str) -> Any:
        if self.key:
            from azure.core.credentials import AzureKeyCredential

            return AzureKeyCredential(self.key)
        from shared.platform.identity import app_credential

        return app_credential(client_id or None)

    def _failure(self, error: Any) -> ActionFailed:
        status = error.status_code
        what = f"publish to {self.target}"
        if status is None:  # the credential could not get a token: the identity endpoint is unwell
            return ActionFailed(f"{what}: no token for Event Grid: {_said(error)}", retryable=True)
        said = f"{what} -> {status}: {_said(error)}"
        if status in (401, 403):
            fix = ("the key is wrong or was regenerated: update its app setting" if self.key else
                   "give the app's managed identity the EventGrid Data Sender role on the topic")  # fmt: skip
            return ActionFailed(f"{said} ({fix})")
        if status == 413:
            return ActionFailed(f"{said} (Event Grid takes at most 1 MB: send less with body:)")
        retry_after = http.retry_after_seconds(error.response.headers) if error.response is not None else None
        return ActionFailed(said, retryable=status in http.RETRYABLE_STATUS, retry_after=retry_after)


def _said(error: Any) -> str:
    text = " ".join(str(getattr(error, "message", None) or error).split())
    return text[:300]
