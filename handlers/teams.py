"""`teams`: an Adaptive Card posted to a Teams Workflows webhook ("When a Teams webhook request is
received"); the retired Office 365 connectors' MessageCard format is not used.

Adaptive Card text (TextBlock, Fact title and value) is Markdown, so text from events is escaped:
a run named `[click](https://evil)` shows as written instead of becoming a link.
"""

from __future__ import annotations

import re
from typing import Any

from handlers.common import http
from handlers.common.notice import Notice
from shared.actions import ActionContext, ActionOutcome, Preview, PreviewPart, pretty_json

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.4"  # what Teams renders everywhere (desktop, web, mobile)
_COLOR = {"bad": "Attention", "good": "Good", "warning": "Warning", "neutral": "Accent"}
# Markdown punctuation that can start formatting, links, lists or HTML-like tags.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~])")
_MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()<>#+\-.!|~])")


def escape_markdown(text: str) -> str:
    """Text shown literally in Adaptive Card Markdown (backslash escapes, as in CommonMark)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\r", " ").replace("\n", " ")


def adaptive_card(notice: Notice) -> dict[str, object]:
    facts = [{"title": escape_markdown(label), "value": escape_markdown(value)} for label, value in notice.rows()]
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": [
            {
                "type": "TextBlock",
                "text": escape_markdown(notice.title),
                "style": "heading",
                "size": "Medium",
                "weight": "Bolder",
                "wrap": True,
            },
            {
                "type": "TextBlock",
                "text": escape_markdown(notice.status),
                "color": _COLOR[notice.tone],
                "weight": "Bolder",
                "spacing": "None",
            },
            {"type": "FactSet", "facts": facts},
            *_member_blocks(notice),
        ],
        # A recurring expectation that never saw its event has no page to open.
        "actions": [{"type": "Action.OpenUrl", "title": notice.link_label, "url": notice.url}]
        if notice.url
        else [],
    }


# The members' lines stop here: a Teams message holds about 28 KB, and the card has more than the list.
MEMBERS_TEXT_MAX = 20_000


def _member_blocks(notice: Notice) -> list[dict[str, object]]:
    """A digest's members, one line each (the card's text, not its facts, so every member fits); a large
    digest (up to 1,000 members) lists as many as fit in MEMBERS_TEXT_MAX characters, then says how many more."""
    if not notice.members:
        return []
    lines: list[str] = []
    size = 0
    for member in notice.members:
        line = f"- {escape_markdown(member.summary())}"
        if size + len(line) > MEMBERS_TEXT_MAX:
            lines.append(f"- … and {len(notice.members) - len(lines)} more")
            break
        lines.append(line)
        size += len(line) + 1
    return [{"type": "TextBlock", "text": "\n".join(lines), "wrap": True, "separator": True}]


def card_text(message: dict[str, Any]) -> str:
    """What a reader sees of a card in a Workflows message: its text, facts and buttons, unescaped."""
    lines = []
    for attachment in message.get("attachments", []):
        card = attachment.get("content") or {}
        for block in card.get("body", []):
            if block.get("type") == "TextBlock":
                lines.append(_MARKDOWN_ESCAPE.sub(r"\1", block.get("text", "")))
            for fact in block.get("facts", []):
                lines.append(_MARKDOWN_ESCAPE.sub(r"\1", f"{fact['title']}: {fact['value']}"))
        lines += [f"{action.get('title', '')}: {action.get('url', '')}" for action in card.get("actions", [])]
    return "\n".join(lines)


def workflows_message(card: dict[str, object]) -> dict[str, object]:
    """The envelope a Teams Workflows webhook expects around an Adaptive Card."""
    return {"type": "message", "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}]}


class TeamsAction(http.PostAction):
    SECRET_PATH = True  # the incoming-webhook URL is the credential
    kind = "teams"

    def preview(self, ctx: ActionContext) -> Preview:
        message = workflows_message(adaptive_card(Notice.of(ctx.event)))
        part = PreviewPart("message.json", pretty_json(message))
        return Preview("adaptive-card", f"Adaptive Card to {self.target}", (part,), card_text(message))

    def run(self, ctx: ActionContext) -> ActionOutcome:
        body = http.json_bytes(workflows_message(adaptive_card(Notice.of(ctx.event))))
        response = self.post(ctx, body, {"Content-Type": "application/json"})
        return ActionOutcome(detail=f"Adaptive Card posted to {self.target} -> {response.status_code}")
