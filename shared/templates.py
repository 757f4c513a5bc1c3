"""Jinja2 templates over events, for message bodies, subjects and action inputs.

Templates are sandboxed (routes.yaml and template files are configuration, not code), strict (an
unknown name is an error, found when routes are validated, not at 3 a.m.), and HTML templates
autoescape: run tags and names are written by data scientists, and `<script>` must arrive as text.
In a template, `event.data.RunId` finds `runId` too: field names are case-insensitive, as everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from shared.events.blobs import blob_batch
from shared.events.catalog import EVENT_TYPE_PREFIX
from shared.events.enrichment import lenient
from shared.events.expectation import example_expectations
from shared.events.model import AmlEvent, get_ci
from shared.events.parse import parse_event
from shared.sandbox import BoundedSandbox, render_bounded

_EXAMPLES = Path(__file__).with_name("example_events.json")
RUN_STATUS_CHANGED = f"{EVENT_TYPE_PREFIX}RunStatusChanged"


class TemplateProblem(ValueError):
    """A template that does not compile or does not render; `file` and `line` say where in the
    template (`file` is None for a template written inline in routes.yaml)."""

    def __init__(self, message: str, line: int | None = None, file: str | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.file = file

    @property
    def where(self) -> str:
        """`file:line`, `line N` or "" — for messages that point at the template."""
        if self.file:
            return f"{self.file}:{self.line}" if self.line else self.file
        return f"line {self.line}" if self.line else ""


class CaseInsensitive(Mapping[str, Any]):
    """A read-only view of event data where `RunId`, `runId` and `RUNID` are the same key."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        missing = object()
        value = get_ci(self._data, key, missing)
        # Keys may hold dots themselves (Azure ML's own tags: `azureml.pipelineid`): the keys under the
        # prefix `azureml.` form a level of their own, so `tags.azureml.pipelineid` reaches them too.
        prefix = f"{key}.".casefold() if isinstance(key, str) else ""
        dotted = {
            name[len(prefix) :]: item
            for name, item in self._data.items()
            if prefix and isinstance(name, str) and name.casefold().startswith(prefix)
        }
        if dotted and (value is missing or isinstance(value, Mapping)):
            value = {**dotted, **(value if value is not missing else {})}
        if value is missing:
            raise KeyError(key)
        return CaseInsensitive(value) if isinstance(value, Mapping) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(dict(self._data))


def _tojson(value: Any) -> str:
    plain = dict(value) if isinstance(value, CaseInsensitive) else value
    return json.dumps(plain, default=lambda v: dict(v) if isinstance(v, Mapping) else str(v))


def _environment(autoescape: bool, loader: jinja2.BaseLoader | None = None) -> SandboxedEnvironment:
    env = BoundedSandbox(
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        loader=loader,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["tojson"] = _tojson
    return env


TEXT = _environment(autoescape=False)
HTML = _environment(autoescape=True)


@cache
def file_environment(search_path: tuple[Path, ...], *, html: bool) -> SandboxedEnvironment:
    """An environment that loads template files from `search_path` (first match wins), so a file can
    `{% extends %}` or `{% include %}` another; cached per worker like the files it compiles."""
    return _environment(autoescape=html, loader=jinja2.FileSystemLoader([str(path) for path in search_path]))


def load_template(env: SandboxedEnvironment, name: str) -> jinja2.Template:
    """A template file by name; a missing file or syntax error (in it or a file it extends) is a
    TemplateProblem naming that file and line."""
    try:
        return env.get_template(name)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateProblem(
            f"template syntax error: {error.message}", error.lineno, error.filename or error.name
        ) from None
    except jinja2.TemplateNotFound as error:
        raise TemplateProblem(f"template {error.name!r} not found") from None


def template_context(event: AmlEvent, route: str | None = None, **extra: Any) -> dict[str, Any]:
    """What every template sees: `event` (the normalised event, `event.data.<Field>`, typed
    `event.fields.<name>`, `event.workspace`, `event.studioUrl`, `event.title`), `facts`, `route`,
    and the details a route with `enrich: true` fetched: `run`, `model` (empty when not fetched; a
    missing field renders empty) and `enrichment.problem` (why they are missing, or ""); for blob events
    and their digests `blobs` (shared/events/blobs.py `BlobBatch`: the folder holding them, their list)."""
    as_dict = event.to_dict()
    enrichment = event.enrichment
    batch = blob_batch(event)
    return {
        "event": CaseInsensitive({**as_dict, "data": event.data, "studio_url": event.studio_url}),
        "facts": event.facts(),
        "route": route,
        "run": lenient((enrichment and enrichment.run) or {}),
        "model": lenient((enrichment and enrichment.model) or {}),
        "enrichment": {"problem": (enrichment and enrichment.problem) or ""},
        **({"blobs": batch} if batch is not None else {}),
        **extra,
    }


def compile_template(source: str, *, html: bool = False) -> jinja2.Template:
    try:
        return (HTML if html else TEXT).from_string(source)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateProblem(f"template syntax error: {error.message}", error.lineno) from None


def render(template: jinja2.Template, context: Mapping[str, Any]) -> str:
    """The template's text, within bounded time and memory (shared/sandbox.py); TemplateProblem
    naming the line otherwise."""
    try:
        return render_bounded(template, context)
    except jinja2.UndefinedError as error:
        message = (error.message or "").replace("'shared.templates.CaseInsensitive object'", "the event")
        raise TemplateProblem(
            f"template refers to something the event does not have: {message}", *_failing_line(error)
        ) from None
    except jinja2.TemplateError as error:
        raise TemplateProblem(f"template error: {error}", *_failing_line(error)) from None
    except (TypeError, ValueError, ArithmeticError, RecursionError, MemoryError) as error:
        raise TemplateProblem(f"template error: {type(error).__name__}: {error}", *_failing_line(error)) from None


def _failing_line(error: BaseException) -> tuple[int | None, str | None]:
    """(line, file) of the template code that raised. Jinja rewrites tracebacks so that template code
    appears as frames carrying the template's file name and line; the innermost one is where it failed."""
    line, file = None, None
    frame = error.__traceback__
    while frame is not None:
        if "__jinja_exception__" in frame.tb_frame.f_globals:
            line, file = frame.tb_lineno, frame.tb_frame.f_code.co_filename
        frame = frame.tb_next
    return line, None if file == "<template>" else file


@cache
def example_events() -> dict[str, AmlEvent]:
    """One complete event per type, to check templates against when routes are loaded."""
    raw = json.loads(_EXAMPLES.read_text(encoding="utf-8"))
    examples = {event_type: parse_event(event) for event_type, event in raw.items() if not event_type.startswith("_")}
    return {**examples, **example_expectations(examples[RUN_STATUS_CHANGED])}


def check_template(template: jinja2.Template, event_types: Iterable[str], **extra: Any) -> str | None:
    """Render against an example of each event type; the first problem, or None."""
    for event_type in event_types:
        example = example_events().get(event_type)
        if example is None:
            continue
        try:
            render(template, template_context(example, route="example", **extra))
        except TemplateProblem as problem:
            return f"{problem} (checked against an example {example.short_type} event)"
    return None


def compile_checked(source: str, event_types: Iterable[str]) -> jinja2.Template:
    """Compile a template and render it against an example of each event type it will see;
    raises TemplateProblem naming what is wrong (routes.yaml validation)."""
    template = compile_template(source)
    if problem := check_template(template, event_types):
        raise TemplateProblem(problem)
    return template
