"""`email` end to end: the app's functions, the ledger on Azurite, and the REAL azure-communication-email
client talking to a local server that speaks the ACS REST contract and checks its HMAC signatures.
Without ACS settings, emails land in the outbox as .eml files."""

from __future__ import annotations

import copy
import email
import email.policy
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers.email.message import id_for
from scripts import validate_routes
from shared.worker import current_engine
from tests.support.acs_fake import ACCESS_KEY, AcsFake, SendReply
from tests.support.events import load_event

SENDER = "DoNotReply@example.azurecomm.net"
KEY = "{id}/failed-runs/0"

# A failed run whose tag a data scientist filled with markup: it must arrive as text.
FAILED_RUN = copy.deepcopy(load_event("eventgrid/run_status_changed_failed.json"))
FAILED_RUN["data"]["runTags"] = {"note": "<script>alert('x')</script>", "team": "growth"}

EMAIL_ROUTE = """
routes:
  - name: failed-runs
    events: [RunStatusChanged]
    when: {data.RunStatus: [Failed, Canceled]}
    actions:
      - email:
          to: ["MLOps team <mlops@contoso.com>"]
          cc: [lead@contoso.com]
          retry: {attempts: 3, backoff: 0s}
"""


@pytest.fixture
def acs() -> Iterator[AcsFake]:
    fake = AcsFake()
    yield fake
    fake.close()


def use_acs(app_env, acs: AcsFake, routes: str = EMAIL_ROUTE) -> None:
    app_env(routes, ACS_ENDPOINT=acs.url, ACS_ACCESS_KEY=ACCESS_KEY, EMAIL_SENDER=SENDER)


def ledger_record(event_id: str, position: int = 0):
    return next(r for r in current_engine().ledger.records(event_id=event_id) if r.position == position)


def test_the_sdk_sends_the_rendered_email_and_the_ledger_keeps_the_operation(app_env, acs, deliver) -> None:
    use_acs(app_env, acs)
    delivery = deliver("run_events", FAILED_RUN)
    assert delivery.error is None, delivery.error
    assert delivery.statuses() == ["done"]
    assert acs.signature_failures == []
    (send,) = acs.sends
    assert send.path == "/emails:send?api-version=2025-09-01"
    body = send.body
    assert body["senderAddress"] == SENDER
    assert body["recipients"] == {
        "to": [{"address": "mlops@contoso.com", "displayName": "MLOps team"}],
        "cc": [{"address": "lead@contoso.com"}],
    }
    run_id = FAILED_RUN["data"]["runId"]
    content = body["content"]
    assert content["subject"] == f"[mlw-contoso-prod] Run {run_id} failed in churn-training"
    studio = f"https://ml.azure.com/runs/{run_id}?wsid=/subscriptions/"
    for fact in ("Workspace: mlw-contoso-prod", "Experiment: churn-training", f"Run: {run_id}", "Status: Failed"):
        assert fact in content["plainText"]
    assert studio in content["plainText"]
    assert "note=<script>alert('x')</script>" in content["plainText"]  # plain text is not escaped
    assert "<script>" not in content["html"]
    assert "note=&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in content["html"]
    assert f'href="{studio}' in content["html"]

    operation = id_for(KEY.format(id=FAILED_RUN["id"]))
    assert send.headers["operation-id"] == operation
    assert acs.polls == [operation]  # polled to the terminal status, quickly (not the SDK's 30 s)
    record = ledger_record(FAILED_RUN["id"])
    assert record.status == "done" and record.extra["operation_id"] == operation
    assert record.extra["acs_status"] == "Succeeded"
    assert f"operation {operation} Succeeded" in record.detail


def test_a_redelivered_event_sends_no_second_email(app_env, acs, deliver) -> None:
    use_acs(app_env, acs)
    first, second = deliver("run_events", FAILED_RUN), deliver("run_events", FAILED_RUN)
    assert (first.statuses(), second.statuses()) == (["done"], ["skipped"])
    assert len(acs.sends) == 1


def test_a_resend_after_a_failure_carries_the_same_operation_id(app_env, acs, deliver) -> None:
    use_acs(app_env, acs, EMAIL_ROUTE.replace("attempts: 3", "attempts: 1"))
    acs.script(SendReply(503, error={"code": "ServiceUnavailable", "message": "try later"}))
    first = deliver("run_events", FAILED_RUN)
    assert first.error is not None and "ACS answered (503): ServiceUnavailable" in str(first.error)
    second = deliver("run_events", FAILED_RUN)
    assert second.statuses() == ["done"]
    assert [send.headers["operation-id"] for send in acs.sends] == [id_for(KEY.format(id=FAILED_RUN["id"]))] * 2


def test_throttling_is_honoured_and_recorded(app_env, acs, deliver) -> None:
    use_acs(app_env, acs)
    acs.script(SendReply(429, headers={"Retry-After": "1"}, error={"code": "TooManyRequests", "message": "slow down"}))
    started = time.monotonic()
    delivery = deliver("run_events", FAILED_RUN)
    assert delivery.statuses() == ["done"]
    assert time.monotonic() - started >= 1.0  # waited as long as the service asked
    assert len(acs.sends) == 2
    assert delivery.reports[0].attempts == 2
    assert ledger_record(FAILED_RUN["id"]).attempts == 2


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            SendReply(final="Failed", error={"code": "EmailDroppedAllRecipientsSuppressed", "message": "suppressed"}),
            "ACS did not send the email",
        ),
        (
            SendReply(400, error={"code": "InvalidSenderDomain", "message": "bad sender"}),
            "ACS rejected the email (400)",
        ),
    ],
    ids=["operation-failed", "rejected-400"],
)
def test_a_failed_send_fails_the_action_without_retrying(app_env, acs, deliver, reply, message) -> None:
    use_acs(app_env, acs)
    acs.script(reply)
    delivery = deliver("run_events", FAILED_RUN)
    assert delivery.error is not None  # Event Grid redelivers; the ledger keeps the failure
    (report,) = delivery.reports
    assert report.status == "failed" and report.attempts == 1 and len(acs.sends) == 1
    assert message in report.detail
    assert reply.error["code"] in report.detail


def test_a_wrong_access_key_says_what_to_fix(app_env, acs, deliver) -> None:
    app_env(EMAIL_ROUTE, ACS_ENDPOINT=acs.url, ACS_ACCESS_KEY="d3Jvbmcta2V5", EMAIL_SENDER=SENDER)
    delivery = deliver("run_events", FAILED_RUN)
    (report,) = delivery.reports
    assert report.status == "failed" and report.attempts == 1
    assert report.detail.startswith("ACS refused the access key (401)")
    assert report.detail.endswith("check ACS_ACCESS_KEY")


def test_without_acs_the_email_is_written_to_the_outbox(app_env, deliver, tmp_path, monkeypatch) -> None:
    for name in ("ACS_ENDPOINT", "ACS_CONNECTION_STRING", "EMAIL_SENDER"):
        monkeypatch.delenv(name, raising=False)
    outbox = tmp_path / "outbox"
    app_env(EMAIL_ROUTE, EMAIL_OUTBOX=str(outbox))
    delivery = deliver("run_events", FAILED_RUN)
    (report,) = delivery.reports
    assert report.status == "done", report.detail
    (path,) = outbox.iterdir()
    assert report.detail.startswith(f"written to outbox {path}")
    assert ledger_record(FAILED_RUN["id"]).extra["outbox_path"] == str(path)
    assert FAILED_RUN["id"] in path.name and path.suffix == ".eml"

    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message.get_content_type() == "multipart/alternative"
    assert message["To"] == "MLOps team <mlops@contoso.com>" and message["Cc"] == "lead@contoso.com"
    run_id = FAILED_RUN["data"]["runId"]
    assert message["Subject"] == f"[mlw-contoso-prod] Run {run_id} failed in churn-training"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for fact in ("Experiment: churn-training", f"Run: {run_id}", "Status: Failed", "Time: 2025-"):
        assert fact in text
    assert f"https://ml.azure.com/runs/{run_id}?wsid=" in text
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert f"https://ml.azure.com/runs/{run_id}?wsid=" in html


def test_a_user_template_overrides_the_shipped_one(app_env, deliver, tmp_path) -> None:
    template = tmp_path / "our_failure.jinja"
    template.write_text(
        '{% extends "run_failed.jinja" %}\n'
        "{% block summary %}Page the on-call data scientist: {{ event.fields.run_id }}.{% endblock %}\n"
    )
    outbox = tmp_path / "outbox"
    routes = EMAIL_ROUTE.replace(
        "cc: [lead@contoso.com]", f'template: "{template}"\n          subject: "ALERT {{{{ event.title }}}}"'
    )
    app_env(routes, EMAIL_OUTBOX=str(outbox))
    assert deliver("run_events", FAILED_RUN).statuses() == ["done"]
    message = email.message_from_bytes(next(outbox.iterdir()).read_bytes(), policy=email.policy.default)
    assert message["Subject"] == f"ALERT Run {FAILED_RUN['data']['runId']} failed"
    assert (
        f"Page the on-call data scientist: {FAILED_RUN['data']['runId']}." in message.get_body(("plain",)).get_content()
    )


@pytest.mark.parametrize(
    ("template_text", "line", "problem"),
    [
        (
            '{% extends "layout.jinja" %}\n{% block summary %}\n'
            "Run {{ event.fields.run_id }}\nby {{ owner }}\n{% endblock %}\n",
            4,
            "'owner' is undefined",
        ),
        ('{% extends "layout.jinja" %}\n{% block summary %}\n{% if %}\n{% endblock %}\n', 3, "template syntax error"),
    ],
    ids=["unknown-variable", "syntax-error"],
)
def test_template_errors_are_reported_at_validation_with_file_and_line(
    tmp_path, capsys, template_text, line, problem
) -> None:
    template = tmp_path / "broken.jinja"
    template.write_text(template_text)
    routes = tmp_path / "routes.yaml"
    routes.write_text(EMAIL_ROUTE.replace("cc: [lead@contoso.com]", f'template: "{template}"'))
    assert validate_routes.main(["--routes", str(routes)]) == 1
    errors = capsys.readouterr().err
    assert f"{template}:{line}: " in errors, errors
    assert problem in errors
    assert f"{routes}:7: route 'failed-runs': email: template:" in errors


def test_bad_addresses_and_unknown_templates_are_reported(tmp_path, capsys) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        EMAIL_ROUTE.replace('["MLOps team <mlops@contoso.com>"]', "[not-an-address]").replace(
            "cc: [lead@contoso.com]", "template: no_such_template"
        )
    )
    assert validate_routes.main(["--routes", str(routes)]) == 1
    errors = capsys.readouterr().err
    assert "email: to: 'not-an-address' is not an email address" in errors
    assert "template 'no_such_template' is neither a shipped template" in errors


def test_the_shipped_routes_validate(capsys) -> None:
    assert validate_routes.main(["--routes", str(Path(__file__).resolve().parents[2] / "routes.yaml")]) == 0
