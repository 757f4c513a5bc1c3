"""`teams` and `slack` end to end: the app's functions, the ledger on Azurite, and a real local HTTP
receiver standing in for the Teams Workflows and Slack incoming webhooks."""

from __future__ import annotations

import copy

import pytest

from tests.support.events import load_event

# A run whose name and tag try to inject a link and a channel-wide mention.
HOSTILE_RUN = copy.deepcopy(load_event("eventgrid/run_status_changed_failed.json"))
HOSTILE_RUN["data"]["experimentName"] = "[click me](https://evil.example) <!channel>"
HOSTILE_RUN["data"]["runTags"] = {"note": "<https://evil.example|open> & *bold*"}

ROUTE = """
routes:
  - name: failed-runs
    events: [RunStatusChanged]
    when: {{data.RunStatus: Failed}}
    actions:
      - {kind}: {{url: "${{HOOK_URL}}/hook", allow_private: true, retry: {{attempts: 1}}}}
"""


def test_teams_gets_an_adaptive_card_in_the_workflows_envelope(app_env, receiver, deliver) -> None:
    app_env(ROUTE.format(kind="teams"), HOOK_URL=receiver.url)
    delivery = deliver("run_events", HOSTILE_RUN)
    assert delivery.statuses() == ["done"]
    (request,) = receiver.requests
    assert request.headers["content-type"] == "application/json"
    message = request.json()
    assert message["type"] == "message"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    title, status, factset = card["body"]
    run_id = HOSTILE_RUN["data"]["runId"].replace("_", "\\_")
    assert title["text"] == f"Run {run_id} failed"
    assert (status["text"], status["color"]) == ("Failed", "Attention")
    facts = {fact["title"]: fact["value"] for fact in factset["facts"]}
    # Markdown is escaped: the brackets and parentheses show as typed, no link forms.
    assert facts["Experiment"] == r"\[click me\]\(https://evil\.example\) \<\!channel\>"
    assert facts["Tags"] == r"note=\<https://evil\.example\|open\> & \*bold\*"
    assert facts["Status"] == "Failed" and facts["Workspace"] == r"mlw\-contoso\-prod"
    (button,) = card["actions"]
    assert button["type"] == "Action.OpenUrl"
    assert button["url"].startswith(f"https://ml.azure.com/runs/{HOSTILE_RUN['data']['runId']}?wsid=")


def test_slack_gets_block_kit_with_a_text_fallback_and_escaped_mrkdwn(app_env, receiver, deliver) -> None:
    app_env(ROUTE.format(kind="slack"), HOOK_URL=receiver.url)
    delivery = deliver("run_events", HOSTILE_RUN)
    assert delivery.statuses() == ["done"]
    message = receiver.requests[0].json()
    run_id = HOSTILE_RUN["data"]["runId"]
    assert message["text"] == f"Run {run_id} failed: Failed"
    header, context, section, actions = message["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": f"Run {run_id} failed", "emoji": False}}
    assert "*Failed*" in context["elements"][0]["text"]
    fields = {field["text"].split("\n", 1)[0]: field["text"].split("\n", 1)[1] for field in section["fields"]}
    assert fields["*Experiment*"] == "[click me](https://evil.example) &lt;!channel&gt;"
    assert fields["*Tags*"] == "note=&lt;https://evil.example|open&gt; &amp; *bold*"
    assert all(field["type"] == "mrkdwn" for field in section["fields"])
    (button,) = actions["elements"]
    assert button["type"] == "button" and button["url"].startswith(f"https://ml.azure.com/runs/{run_id}?wsid=")
    # Nothing from the event reaches Slack as a live link or mention.
    assert "<!channel>" not in receiver.requests[0].body.decode()
    assert "<https://evil" not in receiver.requests[0].body.decode()


@pytest.mark.parametrize("kind", ["teams", "slack"])
def test_a_redelivered_event_posts_no_second_message(app_env, receiver, deliver, kind) -> None:
    app_env(ROUTE.format(kind=kind), HOOK_URL=receiver.url)
    first, second = deliver("run_events", HOSTILE_RUN), deliver("run_events", HOSTILE_RUN)
    assert (first.statuses(), second.statuses()) == (["done"], ["skipped"])
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("kind", ["teams", "slack"])
def test_a_private_destination_is_refused_unless_allowed(app_env, receiver, deliver, kind) -> None:
    app_env(ROUTE.format(kind=kind).replace("allow_private: true, ", ""), HOOK_URL=receiver.url)
    delivery = deliver("run_events", HOSTILE_RUN)
    (report,) = delivery.reports
    assert report.status == "failed" and "refused destination '127.0.0.1'" in report.detail
    assert receiver.requests == []
