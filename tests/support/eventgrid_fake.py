"""A local HTTPS Event Grid: the publish endpoints of a custom topic and of a namespace topic, for the REAL
`azure.eventgrid.EventGridPublisherClient`.

The contract:
  POST /api/events?api-version=2018-01-01                         (custom topic)
       Event Grid schema: Content-Type application/json, an array of {id, subject, eventType, eventTime,
       data, dataVersion}; CloudEvents 1.0: Content-Type application/cloudevents-batch+json, an array of
       {specversion: "1.0", id, source, type, ...}. Authentication: `aeg-sas-key: <key>`, or
       `Authorization: Bearer <Entra token>` whose `aud` is https://eventgrid.azure.net and whose identity
       holds EventGrid Data Sender on the topic. 200 with an empty body.
  POST /topics/{topic}:publish?api-version=2024-06-01               (namespace topic)
       CloudEvents batch only; `Authorization: SharedAccessKey <key>` or a bearer token as above.
  A request over 1 MB (1,048,576 bytes), or with an event over 1 MB, is 413; a malformed batch is 400;
  wrong credentials are 401. Throttling is scripted with `throttle()`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.support.https_fake import Answer, HttpsFake, Request, token_claims

AUDIENCE = "https://eventgrid.azure.net"
MAX_BYTES = 1024 * 1024
EVENTGRID_FIELDS = ("id", "subject", "eventType", "eventTime", "data", "dataVersion")
CLOUDEVENT_FIELDS = ("specversion", "id", "source", "type")


@dataclass
class Published:
    topic: str  # "" for the custom topic, else the namespace topic's name
    schema: str  # "eventgrid" or "cloudevents"
    event: dict[str, Any]
    authentication: str  # "key" or "bearer:<client id>"


class EventGridFake(HttpsFake):
    def __init__(self, key: str = "ZmFrZS1ldmVudGdyaWQta2V5") -> None:
        super().__init__()
        self.key = key
        self.senders: set[str] = set()  # identities (appid) with EventGrid Data Sender
        self.namespace_topics: set[str] = set()
        self.published: list[Published] = []

    @property
    def topic_endpoint(self) -> str:
        return f"{self.url}/api/events"

    def throttle(self, status: int = 429, retry_after: int = 1) -> None:
        self.script(
            Answer(
                status,
                {"error": {"code": "TooManyRequests", "message": "Publish rate exceeded."}},
                {"Retry-After": str(retry_after)},
            )
        )

    def reset(self) -> None:
        self.forget()
        self.senders.clear()
        self.namespace_topics.clear()
        self.published.clear()

    # ---- the contract -------------------------------------------------------------------------------

    def answer(self, request: Request) -> Answer:
        if request.method != "POST":
            return _error(405, "MethodNotAllowed", "Only POST is supported.")
        if request.path == "/api/events":
            if request.query.get("api-version") != "2018-01-01":
                return _error(400, "BadRequest", "The api-version is missing or not supported.")
            topic = ""
        elif request.path.startswith("/topics/") and request.path.endswith(":publish"):
            topic = request.path.removeprefix("/topics/").removesuffix(":publish")
            if topic not in self.namespace_topics:
                return _error(404, "NotFound", f"The topic {topic} was not found in the namespace.")
        else:
            return _error(404, "NotFound", f"The path {request.path} is not a publish endpoint.")
        who = self._authenticate(request, namespace=bool(topic))
        if isinstance(who, Answer):
            return who
        if len(request.body) > MAX_BYTES:
            return _error(413, "RequestEntityTooLarge", f"The maximum size for the payload is {MAX_BYTES} bytes.")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        schema = {"application/json": "eventgrid", "application/cloudevents-batch+json": "cloudevents"}.get(
            content_type
        )
        if schema is None or (topic and schema != "cloudevents"):
            return _error(400, "BadRequest", f"Unsupported content type {content_type!r} for this topic.")
        try:
            events = request.json()
        except ValueError:
            return _error(400, "BadRequest", "The request body is not valid JSON.")
        if not isinstance(events, list) or not events:
            return _error(400, "BadRequest", "The request body must be a non-empty JSON array of events.")
        required = CLOUDEVENT_FIELDS if schema == "cloudevents" else EVENTGRID_FIELDS
        for index, event in enumerate(events):
            missing = [name for name in required if not isinstance(event, dict) or event.get(name) in (None, "")]
            if missing:
                return _error(400, "BadRequest", f"Event {index}: required properties missing: {', '.join(missing)}.")
            if schema == "cloudevents" and event["specversion"] != "1.0":
                return _error(400, "BadRequest", f"Event {index}: specversion must be 1.0.")
            if len(json.dumps(event).encode()) > MAX_BYTES:
                return _error(413, "RequestEntityTooLarge", f"Event {index} is larger than {MAX_BYTES} bytes.")
        with self._lock:
            self.published.extend(Published(topic, schema, event, who) for event in events)
        return Answer(200, {} if topic else None)

    def _authenticate(self, request: Request, *, namespace: bool) -> str | Answer:
        authorization = request.headers.get("authorization", "")
        scheme, _, value = authorization.partition(" ")
        key = value if namespace and scheme == "SharedAccessKey" else request.headers.get("aeg-sas-key")
        if key is not None and not (namespace and scheme.lower() == "bearer"):
            return (
                "key"
                if key == self.key
                else _error(401, "Unauthorized", "The request authorization key is not authorized for this topic.")
            )
        if scheme.lower() == "bearer":
            claims = token_claims(value)
            if claims.get("aud") != AUDIENCE:
                return _error(401, "Unauthorized", f"The token audience {claims.get('aud')!r} is not {AUDIENCE}.")
            if claims.get("appid") not in self.senders:
                return _error(
                    401,
                    "Unauthorized",
                    "The principal associated with the bearer token does not have the "
                    "required permissions to perform action Microsoft.EventGrid/events/send/action.",
                )
            return f"bearer:{claims['appid']}"
        return _error(401, "Unauthorized", "The request does not carry an aeg-sas-key or an Authorization header.")


def _error(status: int, code: str, message: str) -> Answer:
    return Answer(status, {"error": {"code": code, "message": message}})
