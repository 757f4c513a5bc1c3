"""Option values that are JSON with templates in them (`client_payload`, workflow `inputs`, pipeline
`parameters`): every string is a template over the event, checked against example events when routes load;
numbers, true/false and null are sent as written; mappings and lists nest (unless `flat`). Jinja2 loads
only for values that hold a string (cold start). Also the `body:` option (webhook, eventgrid): one template
producing JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.actions import Action, ActionContext, ActionFailed
from shared.problems import Problems

if TYPE_CHECKING:
    from handlers.common.json_body import JsonBodyTemplate


@dataclass(frozen=True)
class _Template:
    compiled: Any  # a jinja2.Template


@dataclass(frozen=True)
class TemplatedJson:
    """A mapping of name -> value whose string leaves are templates. `as_text` renders every value as
    text (GitHub workflow inputs and Azure DevOps parameters are strings on the wire)."""

    tree: Mapping[str, Any]
    as_text: bool = False
    templated: bool = False  # some value is a template (else rendering needs no Jinja2)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.tree)

    @classmethod
    def parse(
        cls, spec: Any, problems: Problems, line: int, where: str, event_types: tuple[str, ...], *, flat: bool = False
    ) -> TemplatedJson:
        if spec is None:
            return cls({}, as_text=flat)
        if not isinstance(spec, Mapping):
            problems.add(line, f"{where} must be a mapping of name: value")
            return cls({}, as_text=flat)
        tree = {
            str(name): _compile(value, problems, line, f"{where}.{name}", event_types, flat)
            for name, value in spec.items()
        }
        return cls(tree, as_text=flat, templated=any(isinstance(leaf, str) for leaf in _leaves(spec)))

    def render(self, ctx: ActionContext, where: str) -> dict[str, Any]:
        """Values for this event; a template the event cannot fill is a permanent failure naming the option."""
        if not self.templated:
            return {name: _render(value, {}, self.as_text) for name, value in self.tree.items()}
        from shared.templates import TemplateProblem, template_context

        context = template_context(ctx.event, ctx.route)
        try:
            return {name: _render(value, context, self.as_text) for name, value in self.tree.items()}
        except TemplateProblem as problem:
            raise ActionFailed(f"{where}: {problem}") from None


def _leaves(value: Any) -> list[Any]:
    """The leaves of an option value."""
    if isinstance(value, Mapping):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _compile(value: Any, problems: Problems, line: int, where: str, event_types: tuple[str, ...], flat: bool) -> Any:
    if isinstance(value, str):
        from shared.templates import TemplateProblem, compile_checked

        try:
            return _Template(compile_checked(value, event_types))
        except TemplateProblem as problem:
            problems.add(line, f"{where}: {problem}")
            return ""
    if isinstance(value, bool | int | float) or value is None:
        return value
    if not flat and isinstance(value, Mapping):
        return {
            str(key): _compile(item, problems, line, f"{where}.{key}", event_types, flat) for key, item in value.items()
        }
    if not flat and isinstance(value, list):
        return [
            _compile(item, problems, line, f"{where}[{index}]", event_types, flat) for index, item in enumerate(value)
        ]
    kinds = "text, a number or true/false" if flat else "text, a number, true/false, a mapping or a list"
    problems.add(line, f"{where}: must be {kinds}, got {type(value).__name__}")
    return ""


def _render(value: Any, context: Mapping[str, Any], as_text: bool) -> Any:
    if isinstance(value, _Template):
        from shared.templates import render

        return render(value.compiled, context)
    if isinstance(value, Mapping):
        return {key: _render(item, context, as_text) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, context, as_text) for item in value]
    if as_text:
        return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return value


def body_template(action: Action, problems: Problems, line: int) -> JsonBodyTemplate | None:
    """The action's `body:` compiled, None without one."""
    source = action.options.get("body")
    if source in (None, ""):
        return None
    if not isinstance(source, str):
        problems.add(line, f"{action.kind}: body must be a template string producing JSON (use |tojson for values)")
        return None
    from handlers.common.json_body import JsonBodyTemplate  # Jinja2 loads only for routes that use `body:`

    return JsonBodyTemplate.compile(source, action.event_types, problems, line, action.kind)
