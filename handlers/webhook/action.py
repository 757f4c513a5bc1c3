"""`webhook`: POST the event as JSON to any URL, signed following Standard Webhooks.

Options: `url`, `allow_private`, `secret` (a `whsec_...` signing secret, from a setting:
`secret: ${WEBHOOK_SIGNING_SECRET}`), `headers` (extra request headers) and `body` (a Jinja2
template producing the JSON body; default: the normalised event and the route name).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import urlsplit

from handlers.common import http
from handlers.common.templated_json import body_template
from handlers.webhook import signing
from shared.actions import ActionContext, ActionOutcome, Preview, PreviewPart
from shared.problems import Problems

# Headers the action sets itself; `headers:` may not replace them.
RESERVED_HEADERS = frozenset({"content-type", "content-length", "host", "idempotency-key"}) | signing.SIGNATURE_HEADERS
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class WebhookAction(http.PostAction):
    kind = "webhook"
    OPTIONS: ClassVar[Mapping[str, bool]] = {
        **http.PostAction.OPTIONS,
        "secret": False,
        "headers": False,
        "body": False,
    }

    def configure(self, problems: Problems, line: int) -> None:
        super().configure(problems, line)
        self.signing_key = self._signing_key(problems, line)
        self.extra_headers = self._extra_headers(problems, line)
        self.body_template = body_template(self, problems, line)

    def _signing_key(self, problems: Problems, line: int) -> bytes | None:
        secret = self.options.get("secret")
        if secret in (None, ""):  # also when ${SETTING} is unset: that is reported on its own
            return None
        try:
            return signing.signing_key(str(secret))
        except ValueError as error:
            problems.add(line, f"webhook: secret {error}")
            return None

    def _extra_headers(self, problems: Problems, line: int) -> dict[str, str]:
        spec = self.options.get("headers") or {}
        if not isinstance(spec, Mapping):
            problems.add(line, "webhook: headers must be a mapping of header name: value")
            return {}
        headers = {}
        for name, value in spec.items():
            name = str(name)
            if not _HEADER_NAME.match(name):
                problems.add(line, f"webhook: headers: {name!r} is not a valid header name")
            elif name.lower() in RESERVED_HEADERS:
                problems.add(line, f"webhook: headers: {name} is set by the action and cannot be overridden")
            elif isinstance(value, (Mapping, list)) or "\r" in str(value) or "\n" in str(value):
                problems.add(line, f"webhook: headers: {name} must be a single-line text value")
            else:
                headers[name] = str(value)
        return headers

    def run(self, ctx: ActionContext) -> ActionOutcome:
        body, headers = self.request(ctx)
        response = self.post(ctx, body, headers)
        signed = ", signed" if self.signing_key is not None else ""
        return ActionOutcome(detail=f"POST {self.target} -> {response.status_code}{signed}")

    def request(self, ctx: ActionContext) -> tuple[bytes, dict[str, str]]:
        """The body and headers of one attempt (signed now, when a secret is set)."""
        body = self.body(ctx)
        key = http.header_value(ctx.key)  # event ids may hold any Unicode; headers are ASCII
        headers = {**self.extra_headers, "Content-Type": "application/json", "Idempotency-Key": key}
        if self.signing_key is not None:
            headers |= signing.signature_headers(self.signing_key, key, body)
        return body, headers

    def preview(self, ctx: ActionContext) -> Preview:
        body, headers = self.request(ctx)
        query = " (query string not shown)" if urlsplit(self.url).query else ""
        # Each attempt signs its own time: the signature shown is what this body gets when sent now.
        signed = "signed (Standard Webhooks)" if self.signing_key is not None else "unsigned (no `secret:`)"
        return Preview(
            "http", f"POST {self.target}{query}, {signed}",
            (PreviewPart("request.http", http.request_preview(self.url, headers, body)),
             PreviewPart("body.json", body.decode("utf-8", "replace"))),
        )  # fmt: skip

    def body(self, ctx: ActionContext) -> bytes:
        if self.body_template is None:
            return http.json_bytes({"route": ctx.route, "event": ctx.event.to_dict()})
        return self.body_template.render(ctx.event, ctx.route)
