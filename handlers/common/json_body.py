"""A `body:` template (webhook, eventgrid): Jinja2 producing JSON, checked at route load against example events."""

from __future__ import annotations

import json
from dataclasses import dataclass

import jinja2

from shared.events.model import AmlEvent
from shared.problems import Problems
from shared.templates import (
    TemplateProblem,
    check_template,
    compile_template,
    example_events,
    render,
    template_context,
)


@dataclass(frozen=True)
class JsonBodyTemplate:
    template: jinja2.Template

    @classmethod
    def compile(
        cls, source: str, event_types: tuple[str, ...], problems: Problems, line: int, kind: str
    ) -> JsonBodyTemplate | None:
        try:
            template = compile_template(source)
        except TemplateProblem as problem:
            problems.add(line, f"{kind}: body: {problem} ({problem.where} of the template)")
            return None
        if problem := check_template(template, event_types) or _json_problem(template, event_types):
            problems.add(line, f"{kind}: body: {problem}")
            return None
        return cls(template)

    def render(self, event: AmlEvent, route: str) -> bytes:
        return render(self.template, template_context(event, route)).encode("utf-8")


def _json_problem(template: jinja2.Template, event_types: tuple[str, ...]) -> str | None:
    """Whether the body renders to valid JSON for an example of each event type."""
    for event_type in event_types:
        example = example_events().get(event_type)
        if example is None:
            continue
        rendered = render(template, template_context(example, route="example"))
        try:
            json.loads(rendered)
        except ValueError as error:
            return (
                f"does not render to valid JSON for an example {example.short_type} event: {error} "
                "(quote text values with |tojson)"
            )
    return None
