"""scripts/preview.py: every action of every matching route rendered without sending, as files and as
a page that a real browser (Debian's Chromium through Playwright) shows as a person would see it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
from pathlib import Path
from typing import Any

import pytest

from handlers.azureml.client import job_name_for
from scripts import preview
from scripts.make_event import build_event
from shared.events.parse import parse_event
from shared.settings import Settings
from shared.worker import load_routes
from tests.support.browser import chromium

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
ROUTES = f"""
routes:
  - name: failures
    events: [RunStatusChanged]
    when:
      data.RunStatus: Failed
    actions:
      - log: {{level: warning}}
      - email: {{to: [mlops@contoso.com], cc: [lead@contoso.com]}}
      - teams: {{url: "https://teams.example.com/workflows/abc?sig=TEAMS-SECRET"}}
      - slack: {{url: "https://hooks.slack.example.com/services/T/B/X"}}
      - webhook:
          url: https://hooks.example.com/aml?token=QUERY-SECRET
          secret: {SECRET}
          headers: {{Authorization: Bearer HEADER-SECRET, X-Team: growth}}
  - name: prod-only
    events: [RunStatusChanged]
    when:
      data.ExperimentName: {{startswith: prod-}}
    actions:
      - log: {{}}
  - name: drift-retrain
    events: [DatasetDriftDetected]
    actions:
      - pipeline:
          job: pipelines/retrain-on-drift.yml
          inputs: {{drift_run_id: "{{{{ event.data.RunId }}}}"}}
          tags: {{monitor: "{{{{ event.fields.data_drift_name }}}}"}}
"""
# Event text that would run script, or make a link, if any renderer read it as markup.
HOSTILE = "<img src=x onerror=\"document.title='pwned'\"></script><script>document.title='pwned'</script> [x](https://evil.example)"


def write_event(folder: Path, name: str, event_type: str, **values: Any) -> Path:
    path = folder / name
    path.write_text(json.dumps(build_event(event_type, values)))
    return path


@pytest.fixture
def previewed(tmp_path: Path) -> tuple[Path, dict[str, Any], Path]:
    """(the preview folder, the failed-run event, the routes file) after running preview.py."""
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    event_file = write_event(tmp_path, "failed.json", "RunStatusChanged", **{
        "data.RunStatus": "Failed", "data.ExperimentName": "dev-churn", "data.RunTags.note": HOSTILE,
    })  # fmt: skip
    out = tmp_path / "preview"
    assert preview.main(["--routes", str(routes), "--out", str(out), str(event_file)]) == 0
    return out, json.loads(event_file.read_text()), routes


def action_folder(out: Path, suffix: str) -> Path:
    (found,) = [path for path in out.glob(f"01-*/*-{suffix}") if path.is_dir()]
    return found


def test_every_action_is_rendered_to_files_without_sending(previewed: tuple[Path, dict[str, Any], Path]) -> None:
    out, raw, _ = previewed
    event = parse_event(raw)
    email = action_folder(out, "1-email")
    assert (email / "headers.txt").read_text().splitlines()[:2] == ["To: mlops@contoso.com", "Cc: lead@contoso.com"]
    assert event.title in (email / "body.txt").read_text()
    body_html = (email / "body.html").read_text()
    assert "&lt;script&gt;" in body_html and "<script>" not in body_html  # the email template autoescapes
    card = json.loads((action_folder(out, "2-teams") / "message.json").read_text())
    assert card["attachments"][0]["content"]["type"] == "AdaptiveCard"
    slack = json.loads((action_folder(out, "3-slack") / "message.json").read_text())
    assert slack["blocks"][0]["text"]["text"] == event.title


def test_what_a_reader_sees_of_a_card_or_message_is_the_event_text_as_written(
    previewed: tuple[Path, dict[str, Any], Path],
) -> None:
    _, raw, routes = previewed
    event = parse_event(raw)
    table = load_routes(routes, {})
    result = preview.preview_event(table, event, "x", Settings.from_environ({}))
    shown = {item.kind: item.preview.shown for item in result.actions}
    for kind in ("teams", "slack"):
        assert f"note={HOSTILE}" in shown[kind]  # escaped in the markup, as written for the reader
        assert f"Open in Azure ML studio: {event.studio_url}" in shown[kind]


def test_webhook_preview_shows_the_signature_it_would_send_and_hides_credentials(
    previewed: tuple[Path, dict[str, Any], Path],
) -> None:
    out, _, _ = previewed
    folder = action_folder(out, "4-webhook")
    request = (folder / "request.http").read_text()
    body = (folder / "body.json").read_bytes()
    headers = dict(line.split(": ", 1) for line in request.split("\n\n", 1)[0].splitlines()[1:])
    # The signature is the one a Standard Webhooks receiver would verify over the body as sent.
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(b"k" * 32, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    assert headers["X-Team"] == "growth"
    everything = "\n".join(path.read_text() for path in out.rglob("*") if path.is_file() and path.suffix != ".js")
    for secret in ("HEADER-SECRET", "QUERY-SECRET", "TEAMS-SECRET", SECRET):
        assert secret not in everything


def test_unmatched_routes_are_explained_on_the_page(previewed: tuple[Path, dict[str, Any], Path]) -> None:
    out, _, _ = previewed
    page = html.unescape((out / "index.html").read_text())
    assert "prod-only: not matched: data.ExperimentName: 'dev-churn' does not start with 'prod-'" in page
    assert "drift-retrain: not matched: takes DatasetDriftDetected, not RunStatusChanged" in page


def test_pipeline_preview_names_the_job_inputs_and_tags(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    drift = write_event(tmp_path, "drift.json", "DatasetDriftDetected")
    out = tmp_path / "out"
    assert preview.main(["--routes", str(routes), "--out", str(out), str(drift)]) == 0
    job = json.loads((action_folder(out, "0-pipeline") / "job.json").read_text())
    event = parse_event(json.loads(drift.read_text()))
    assert job["inputs"] == {"drift_run_id": event.data["RunId"]}
    assert job["tags"]["monitor"] == event.data_drift_name
    assert job["tags"]["aml_events.route"] == "drift-retrain"
    assert job["job_name"] == job_name_for(f"{event.id}/drift-retrain/0", "drift-retrain")  # what run() submits


def test_a_folder_preview_did_not_write_is_never_emptied(tmp_path: Path) -> None:
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep")
    event = write_event(tmp_path, "e.json", "ModelRegistered")
    with pytest.raises(SystemExit, match=r"not written by preview\.py"):
        preview.main(["--out", str(precious), str(event)])
    assert (precious / "notes.txt").read_text() == "keep"


def test_event_text_cannot_close_the_embedded_json() -> None:
    text = preview._script_json({"a": "</script><!-- & >"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"a": "</script><!-- & >"}


def test_the_page_shows_card_slack_and_email_as_rendered_in_a_real_browser(
    previewed: tuple[Path, dict[str, Any], Path], tmp_path: Path
) -> None:
    out, raw, _ = previewed
    event = parse_event(raw)
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1100, "height": 5000})
        requested: list[str] = []

        def offline(route: Any) -> None:  # the page must load nothing from the network
            if route.request.url.startswith("file:"):
                route.continue_()
            else:
                requested.append(route.request.url)
                route.abort()

        context.route("**/*", offline)
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.goto((out / "index.html").as_uri())
        page.wait_for_selector("body[data-ready=yes]")

        card = page.locator("article[data-view=adaptive-card]")
        assert card.get_attribute("data-rendered") == "yes"
        card_text = card.locator(".rendered").inner_text()
        assert event.title in card_text and "Failed" in card_text
        assert HOSTILE.replace("\\", "") in card_text.replace("\\", "")  # shown as written, not as markup
        with context.expect_page() as opened:
            card.locator(".rendered button", has_text="Open in Azure ML studio").click()
        opened.value.wait_for_load_state("domcontentloaded")
        assert requested == [event.studio_url]

        slack = page.locator("article[data-view=slack] .rendered")
        assert event.title in slack.inner_text() and "Failed" in slack.inner_text()
        assert slack.locator("a", has_text="Open in Azure ML studio").get_attribute("href") == event.studio_url

        frame = page.frame_locator("article[data-view=email] iframe")
        email_text = frame.locator("body").inner_text()
        assert event.title in email_text and "Failed" in email_text
        assert frame.locator("a", has_text="Open in Azure ML studio").get_attribute("href") == event.studio_url

        screenshot = tmp_path / "preview.png"
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert page.title() == "Preview of routed messages" and problems == []
        context.close()


def test_ci_and_event_grid_kinds_preview_their_requests_without_credentials(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("""
routes:
  - name: deploy
    events: [ModelRegistered]
    actions:
      - github:
          repository: contoso/models
          workflow: {file: deploy.yml, ref: main, inputs: {model: "{{ event.fields.model_name }}"}}
          token: GH-TOKEN-SECRET
      - azure_devops:
          organization: contoso
          project: mlops
          pipeline: 42
          parameters: {version: "{{ event.fields.model_version }}"}
      - eventgrid: {endpoint: "https://topic.westeurope-1.eventgrid.azure.net/api/events"}
""")
    model = write_event(tmp_path, "m.json", "ModelRegistered", **{"data.ModelName": "churn", "data.ModelVersion": 8})
    out = tmp_path / "out"
    assert preview.main(["--routes", str(routes), "--out", str(out), str(model)]) == 0
    github = (action_folder(out, "0-github") / "request.http").read_text()
    assert github.startswith("POST https://api.github.com/repos/contoso/models/actions/workflows/deploy.yml/dispatches")
    assert "Authorization: <hidden>" in github and "GH-TOKEN-SECRET" not in github
    assert '"inputs": {\n    "model": "churn"' in github
    devops = (action_folder(out, "1-azure_devops") / "request.http").read_text()
    assert devops.splitlines()[0].endswith("/contoso/mlops/_apis/pipelines/42/runs")  # no query string shown
    assert '"templateParameters": {\n    "version": "8"' in devops
    published = json.loads((action_folder(out, "2-eventgrid") / "event.json").read_text())
    assert (published.get("eventType") or published["type"]) == "Microsoft.MachineLearningServices.ModelRegistered"
    assert published["data"]["fields"]["model_name"] == "churn"
