"""The subject, plain-text and HTML bodies of an email, from a Jinja2 template file.

One file makes one email: it is rendered three times with `part` = "subject", "text" and "html";
the HTML rendering autoescapes. Shipped templates live in templates/email/ (one per Azure ML event
type, one per family of blob, policy and resource events, all extending layout.jinja); a user's file may
extend any of them. Templates are loaded and
rendered against an example of each of the route's event types when routes are loaded, so an
unknown variable or a syntax error is reported then, with the file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from handlers.common.notice import Notice
from shared.events.catalog import FUNCTION_EVENT_TYPES
from shared.events.model import AmlEvent
from shared.platform.tables import storable
from shared.settings import APP_ROOT
from shared.templates import TemplateProblem, example_events, file_environment, load_template, render, template_context

SHIPPED = APP_ROOT / "templates" / "email"
DEFAULT_TEMPLATE = {
    "Microsoft.MachineLearningServices.RunStatusChanged": "run_failed",
    "Microsoft.MachineLearningServices.RunCompleted": "run_completed",
    "Microsoft.MachineLearningServices.ModelRegistered": "model_registered",
    "Microsoft.MachineLearningServices.ModelDeployed": "model_deployed",
    "Microsoft.MachineLearningServices.DatasetDriftDetected": "drift_detected",
    **dict.fromkeys(FUNCTION_EVENT_TYPES["data_events"], "blob_event"),
    **dict.fromkeys(FUNCTION_EVENT_TYPES["policy_events"], "policy_state"),
    **dict.fromkeys(FUNCTION_EVENT_TYPES["resource_events"], "resource_event"),
    "ExpectationMissed": "expectation",  # route `expect:`
    "ExpectationResolvedLate": "expectation",
}
DIGEST_TEMPLATE = "digest"  # for digests of routes with `group:`, unless the route names a template
_SHIPPED_NAME = re.compile(r"^[a-z_]+$")


MAX_SUBJECT_CHARS = 250


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


def email_context(event: AmlEvent, route: str | None, part: str) -> dict[str, Any]:
    return template_context(event, route, part=part, notice=Notice.of(event))


class EmailTemplate:
    """A template file compiled twice: as text (subject, plain body) and as autoescaped HTML."""

    def __init__(self, reference: str) -> None:
        """`reference`: a shipped template's name (`run_failed`) or the path of a file, relative
        to the app root. Raises TemplateProblem if it cannot be found or does not compile."""
        if _SHIPPED_NAME.match(reference) and (SHIPPED / f"{reference}.jinja").is_file():
            path = SHIPPED / f"{reference}.jinja"
        else:
            path = Path(reference) if Path(reference).is_absolute() else APP_ROOT / reference
            if not path.is_file():
                shipped = ", ".join(sorted(DEFAULT_TEMPLATE.values()))
                raise TemplateProblem(f"template {reference!r} is neither a shipped template ({shipped}) nor a file")
        self.path = path
        # The file's own folder first, so it can extend its neighbours; then the shipped templates.
        search_path = (path.parent.resolve(), SHIPPED.resolve())
        self._text = load_template(file_environment(search_path, html=False), path.name)
        self._html = load_template(file_environment(search_path, html=True), path.name)

    @property
    def name(self) -> str:
        return _relative(str(self.path))

    def render(self, event: AmlEvent, route: str | None, subject: jinja2.Template | None = None) -> EmailContent:
        """Raises TemplateProblem naming the file and line."""
        # Event text may hold lone surrogates (valid JSON, not encodable): written as their escapes. A
        # subject is one line of bounded length (header folding of a huge one is slow, and useless).
        subject_text = " ".join(render(subject or self._text, email_context(event, route, "subject")).split())
        if len(subject_text) > MAX_SUBJECT_CHARS:
            subject_text = subject_text[: MAX_SUBJECT_CHARS - 1] + "…"
        return EmailContent(
            subject=storable(subject_text),
            text=storable(render(self._text, email_context(event, route, "text")).strip() + "\n"),
            html=storable(render(self._html, email_context(event, route, "html")).strip() + "\n"),
        )

    def check(self, event_types: tuple[str, ...], subject: jinja2.Template | None = None) -> str | None:
        """The first problem rendering an example of each event type, or None."""
        for event_type in event_types:
            example = example_events().get(event_type)
            if example is None:
                continue
            try:
                content = self.render(example, "example", subject)
            except TemplateProblem as problem:
                # Template files always carry their name; a problem without one is in the inline subject.
                where = f"{_relative(problem.file)}:{problem.line}" if problem.file else "subject"
                return f"{where}: {problem} (checked against an example {example.short_type} event)"
            if not content.subject:
                return f"{self.name}: renders an empty subject for an example {example.short_type} event"
            if not content.text.strip() or not content.html.strip():
                return (
                    f"{self.name}: renders an empty body for an example {example.short_type} event "
                    '(a template is rendered with part = "subject", "text" and "html"; extend layout.jinja)'
                )
        return None


def _relative(file: str) -> str:
    """A file as people see it in messages: relative to the app root when it is inside it."""
    path = Path(file)
    return str(path.relative_to(APP_ROOT)) if path.is_relative_to(APP_ROOT) else file
