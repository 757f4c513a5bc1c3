"""The `eventgrid` action with the REAL azure-eventgrid publisher client against a local HTTPS Event Grid
(tests/support/eventgrid_fake.py) that checks the auth header or the token's audience and role, the schema
and content type of the batch, and the 1 MB limits."""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers import eventgrid
from shared.platform import identity
from tests.support.cicd import trust
from tests.support.delivery import only_record
from tests.support.eventgrid_fake import MAX_BYTES, EventGridFake
from tests.support.events import load_event
from tests.support.identity_endpoint import IdentityEndpoint

ROOT = Path(__file__).resolve().parents[2]
MODEL = load_event("eventgrid/model_registered.json")
KEY = f"{MODEL['id']}/forward/0"
CLIENT_ID = "5e29463d-71da-4fe0-8e69-999b57db23b0"

ROUTE = """
routes:
  - name: forward
    events: [ModelRegistered]
    actions:
      - eventgrid:
          endpoint: "${{FORWARD_TOPIC_ENDPOINT}}"
          allow_private: true
          retry: {{attempts: 3, backoff: 0s}}
{extra}"""


def route(extra: str = "") -> str:
    return ROUTE.format(extra=extra)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[EventGridFake, IdentityEndpoint]]:
    fake, endpoint = EventGridFake(), IdentityEndpoint()
    yield fake, endpoint
    fake.close()
    endpoint.close()


@pytest.fixture
def topic(servers, app_env, monkeypatch: pytest.MonkeyPatch):
    """`configure(routes, **settings)`: the app pointed at the topic (key in FORWARD_TOPIC_KEY) and at the
    identity endpoint; the app's identity holds EventGrid Data Sender."""
    fake, endpoint = servers
    fake.reset()
    endpoint.forget()
    fake.senders.add(CLIENT_ID)
    trust(monkeypatch, fake.ca_bundle)
    monkeypatch.setattr(identity, "app_credential", functools.cache(identity.app_credential.__wrapped__))
    monkeypatch.setattr(eventgrid, "_clients", {})

    def configure(text: str, **settings: str) -> EventGridFake:
        defaults = {"FORWARD_TOPIC_ENDPOINT": fake.topic_endpoint, "FORWARD_TOPIC_KEY": fake.key,
                    "AZURE_CLIENT_ID": CLIENT_ID, **endpoint.settings()}  # fmt: skip
        app_env(text, **{**defaults, **settings})
        return fake

    return configure


def test_a_cloudevent_with_the_key_carries_an_id_derived_from_the_ledger_key(topic, deliver) -> None:
    fake = topic(route('          key: "${FORWARD_TOPIC_KEY}"\n'))
    assert deliver("model_registered", MODEL).statuses() == ["done"]
    (published,) = fake.published
    assert (published.schema, published.authentication) == ("cloudevents", "key")
    event = published.event
    assert event["id"] == eventgrid.event_id(KEY) and event["specversion"] == "1.0"
    assert event["type"] == MODEL["eventType"] and event["source"] == MODEL["topic"]
    assert event["subject"] == MODEL["subject"] and event["data"]["fields"]["model_name"] == "churn-classifier"
    done = only_record(MODEL["id"])
    assert done.extra["published_id"] == event["id"] and fake.key not in repr(done)


def test_the_managed_identity_publishes_the_event_grid_schema(topic, deliver) -> None:
    fake = topic(route("          schema: eventgrid\n"))
    assert deliver("model_registered", MODEL).statuses() == ["done"]
    (published,) = fake.published
    assert (published.schema, published.authentication) == ("eventgrid", f"bearer:{CLIENT_ID}")
    assert published.event["eventType"] == MODEL["eventType"] and published.event["id"] == eventgrid.event_id(KEY)


def test_a_templated_body_to_a_namespace_topic(servers, topic, deliver) -> None:
    extra = (
        '          key: "${FORWARD_TOPIC_KEY}"\n          namespace_topic: models\n'
        "          body: '{\"model\": {{ event.fields.model_name|tojson }}}'\n"
    )
    fake = topic(route(extra), FORWARD_TOPIC_ENDPOINT=servers[0].url)  # the namespace's endpoint
    fake.namespace_topics.add("models")
    assert deliver("model_registered", MODEL).statuses() == ["done"]
    (published,) = fake.published
    assert published.topic == "models" and published.event["data"] == {"model": "churn-classifier"}


def test_a_redelivery_publishes_nothing_and_a_retry_keeps_the_id(topic, deliver) -> None:
    fake = topic(route())
    fake.throttle(429, retry_after=1)
    (report,) = deliver("model_registered", MODEL).reports
    assert (report.status, report.attempts) == ("done", 2)
    first, second = (request.json()[0]["id"] for request in fake.sent("POST"))
    assert first == second == eventgrid.event_id(KEY)
    assert deliver("model_registered", MODEL).statuses() == ["skipped"]
    assert len(fake.published) == 1


@pytest.mark.parametrize(
    ("extra", "change", "expected"),
    [
        ("", lambda fake: fake.senders.clear(), "give the app's managed identity the EventGrid Data Sender role"),
        ('          key: "wrong-key"\n', None, "the key is wrong or was regenerated"),
        ("          body: '{\"big\": {{ (\"x\" * 1100000)|tojson }}}'\n", None,
         "Event Grid takes at most 1048576 (1 MB): send less with body:"),
    ],
)  # fmt: skip
def test_permanent_failures_say_what_to_fix(topic, deliver, extra, change, expected) -> None:
    fake = topic(route(extra))
    if change:
        change(fake)
    delivery = deliver("model_registered", MODEL)
    assert delivery.statuses() == ["failed"] and delivery.reports[0].attempts == 1
    assert expected in only_record(MODEL["id"]).detail, only_record(MODEL["id"]).detail
    assert fake.published == []


def test_the_fake_refuses_a_batch_over_1_mb_as_event_grid_does(servers, monkeypatch) -> None:
    from azure.core.credentials import AzureKeyCredential
    from azure.core.exceptions import HttpResponseError
    from azure.core.messaging import CloudEvent
    from azure.eventgrid import EventGridPublisherClient

    fake, _ = servers
    trust(monkeypatch, fake.ca_bundle)
    client = EventGridPublisherClient(fake.topic_endpoint, AzureKeyCredential(fake.key))
    events = [CloudEvent(source="/s", type="t", data="x" * (MAX_BYTES // 3)) for _ in range(4)]
    with pytest.raises(HttpResponseError) as caught:
        client.send(events, retry_total=0)
    assert caught.value.status_code == 413


def test_loading_an_eventgrid_route_does_not_import_the_sdk(tmp_path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(route().replace("${FORWARD_TOPIC_ENDPOINT}", "https://t.westus-1.eventgrid.azure.net/api/events"))
    script = textwrap.dedent(f"""
        import sys
        from shared.worker import load_routes
        load_routes({str(routes)!r}, {{}})
        print("azure.eventgrid" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False", result.stderr
