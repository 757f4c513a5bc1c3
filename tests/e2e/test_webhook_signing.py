"""Signed webhooks (Standard Webhooks), extra headers and body templates, received by a real local
server and verified by an independent implementation (the `standardwebhooks` package)."""

from __future__ import annotations

import base64
import json

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from scripts import validate_routes
from tests.support.events import load_event
from tests.support.receiver import Reply

FAILED_RUN = load_event("eventgrid/run_status_changed_failed.json")
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
KEY = f"{FAILED_RUN['id']}/alerts/0"

SIGNED_ROUTE = """
routes:
  - name: alerts
    events: [RunStatusChanged]
    when: {data.RunStatus: Failed}
    actions:
      - webhook:
          url: "${HOOK_URL}/hook"
          allow_private: true
          secret: "${SIGNING_SECRET}"
          headers: {X-Team: mlops, Authorization: "Bearer ${RECEIVER_TOKEN}"}
          retry: {attempts: 2, backoff: 0s}
"""


def test_the_signature_verifies_with_an_independent_implementation(app_env, receiver, deliver) -> None:
    app_env(SIGNED_ROUTE, HOOK_URL=receiver.url, SIGNING_SECRET=SECRET, RECEIVER_TOKEN="t0ken")
    assert deliver("run_events", FAILED_RUN).statuses() == ["done"]
    (request,) = receiver.requests
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["event"]["id"] == FAILED_RUN["id"] and payload["route"] == "alerts"
    assert request.headers["webhook-id"] == KEY
    assert request.headers["x-team"] == "mlops" and request.headers["authorization"] == "Bearer t0ken"
    # A tampered body or another secret does not verify.
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(request.body.replace(b"Failed", b"Completed"), request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"another-secret-another-secret!!").decode()).verify(
            request.body, request.headers
        )


def test_a_retry_keeps_the_webhook_id_and_is_signed_afresh(app_env, receiver, deliver) -> None:
    app_env(SIGNED_ROUTE, HOOK_URL=receiver.url, SIGNING_SECRET=SECRET, RECEIVER_TOKEN="t0ken")
    receiver.script(Reply(503, b"busy"))
    assert deliver("run_events", FAILED_RUN).statuses() == ["done"]
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == KEY  # receivers de-duplicate on it
    for request in (first, second):
        Webhook(SECRET).verify(request.body, request.headers)


def test_a_body_template_shapes_the_json(app_env, receiver, deliver) -> None:
    route = SIGNED_ROUTE.replace(
        "retry: {attempts: 2, backoff: 0s}",
        'body: \'{"text": {{ event.title|tojson }}, "run": {{ event.fields.run_id|tojson }}, '
        '"route": {{ route|tojson }}}\'',
    )
    app_env(route, HOOK_URL=receiver.url, SIGNING_SECRET=SECRET, RECEIVER_TOKEN="t0ken")
    assert deliver("run_events", FAILED_RUN).statuses() == ["done"]
    (request,) = receiver.requests
    run_id = FAILED_RUN["data"]["runId"]
    assert Webhook(SECRET).verify(request.body, request.headers) == {
        "text": f"Run {run_id} failed",
        "run": run_id,
        "route": "alerts",
    }
    assert json.loads(request.body)["run"] == run_id


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (('secret: "${SIGNING_SECRET}"', 'secret: "not-a-secret"'), "webhook: secret must start with 'whsec_'"),
        (('secret: "${SIGNING_SECRET}"', 'secret: "whsec_c2hvcnQ="'), "decodes to 5 bytes"),
        (('secret: "${SIGNING_SECRET}"', 'secret: "whsec_***"'), "is not valid base64"),
        (("X-Team: mlops", "webhook-signature: forged"), "webhook-signature is set by the action"),
        (
            ("retry: {attempts: 2, backoff: 0s}", "body: '{\"text\": {{ event.title }}}'"),
            "does not render to valid JSON",
        ),
        (("retry: {attempts: 2, backoff: 0s}", "body: '{{ event.nope }}'"), "does not have"),
        (("retry: {attempts: 2, backoff: 0s}", "body: '{% if %}'"), "template syntax error"),
    ],
    ids=["no-prefix", "short-key", "not-base64", "reserved-header", "not-json", "unknown-variable", "syntax"],
)
def test_bad_signing_options_are_reported_at_validation(tmp_path, capsys, monkeypatch, change, problem) -> None:
    monkeypatch.setenv("HOOK_URL", "https://hooks.example.com")
    monkeypatch.setenv("SIGNING_SECRET", SECRET)
    monkeypatch.setenv("RECEIVER_TOKEN", "t0ken")
    routes = tmp_path / "routes.yaml"
    routes.write_text(SIGNED_ROUTE.replace(*change))
    assert validate_routes.main(["--routes", str(routes)]) == 1
    errors = capsys.readouterr().err
    assert problem in errors, errors
    assert f"{routes}:7: route 'alerts': webhook:" in errors
    assert "0123456789abcdef" not in errors  # the secret is never echoed
