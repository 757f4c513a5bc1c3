"""`slack`: a Block Kit message posted to a Slack incoming webhook, with a plain `text` fallback
for notifications and clients that do not show blocks.

Slack reads `<...>` in text as links and mentions (`<!channel>`, `<https://evil|click>`), so text
from events has `&`, `<` and `>` escaped as Slack asks (&amp; &lt; &gt;) wherever it is mrkdwn.
"""

from __future__ import annotations

from typing import Any

from handlers.common import http
from handlers.common.notice import Notice
from shared.actions import ActionContext, ActionOutcome, Preview, PreviewPart, pretty_json

_EMOJI = {
    "bad": ":red_circle:",
    "good": ":large_green_circle:",
    "warning": ":warning:",
    "neutral": ":information_source:",
}
# Block Kit limits: a header's text is at most 150 characters, a section at most 10 fields and 3,000
# characters of text, a message at most 50 blocks.
_HEADER_MAX, _FIELDS_MAX, _SECTION_TEXT_MAX, _MEMBER_BLOCKS_MAX = 150, 10, 3000, 40


def escape_mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(notice: Notice) -> dict[str, object]:
    fields = [{"type": "mrkdwn", "text": f"*{label}*\n{escape_mrkdwn(value)}"} for label, value in notice.rows()]
    title = notice.title if len(notice.title) <= _HEADER_MAX else notice.title[: _HEADER_MAX - 1] + "…"
    return {
        "text": f"{escape_mrkdwn(notice.title)}: {escape_mrkdwn(notice.status)}",
        "blocks": [
            # plain_text is never parsed for links or mentions, so it needs no escaping
            {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": False}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"{_EMOJI[notice.tone]} *{escape_mrkdwn(notice.status)}*"}],
            },
            {"type": "section", "fields": fields[:_FIELDS_MAX]},
            *_member_sections(notice),
            *_studio_button(notice),
        ],
    }


def message_text(message: dict[str, Any]) -> str:
    """What a reader sees of a message: its blocks' text and buttons, with mrkdwn's escapes undone."""
    texts: list[str] = []
    for block in message.get("blocks", []):
        objects = [block.get("text"), *block.get("fields", []), *block.get("elements", [])]
        for item in filter(None, objects):
            text = item.get("text")
            text = text.get("text", "") if isinstance(text, dict) else text or ""
            texts.append(f"{text}: {item['url']}" if item.get("url") else text)
    return "\n".join(texts).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _studio_button(notice: Notice) -> list[dict[str, object]]:
    """The link into Azure ML studio or the portal (none for a recurring expectation that never saw its event)."""
    if not notice.url:
        return []
    button = {"type": "button", "text": {"type": "plain_text", "text": notice.link_label}, "url": notice.url,
              "style": "primary"}  # fmt: skip
    return [{"type": "actions", "elements": [button]}]


def _member_sections(notice: Notice) -> list[dict[str, object]]:
    """A digest's members as mrkdwn lines, packed into sections within Slack's limits."""
    sections: list[str] = []
    for member in notice.members:
        line = f"• {escape_mrkdwn(member.summary())}"[: _SECTION_TEXT_MAX - 1]
        if sections and len(sections[-1]) + 1 + len(line) <= _SECTION_TEXT_MAX:
            sections[-1] += "\n" + line
        else:
            sections.append(line)
    if len(sections) > _MEMBER_BLOCKS_MAX:
        shown = sum(text.count("\n") + 1 for text in sections[: _MEMBER_BLOCKS_MAX - 1])
        sections = [*sections[: _MEMBER_BLOCKS_MAX - 1], f"… and {len(notice.members) - shown} more"]
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text}} for text in sections]


class SlackAction(http.PostAction):
    SECRET_PATH = True  # the incoming-webhook URL is the credential
    kind = "slack"

    def preview(self, ctx: ActionContext) -> Preview:
        message = slack_message(Notice.of(ctx.event))
        part = PreviewPart("message.json", pretty_json(message))
        return Preview("slack", f"Block Kit message to {self.target}", (part,), message_text(message))

    def run(self, ctx: ActionContext) -> ActionOutcome:
        body = http.json_bytes(slack_message(Notice.of(ctx.event)))
        response = self.post(ctx, body, {"Content-Type": "application/json"})
        return ActionOutcome(detail=f"Block Kit message posted to {self.target} -> {response.status_code}")
