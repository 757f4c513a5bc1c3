"""`inputs:` of the pipeline and batch_endpoint actions: values are templates over the event.

A value is either a scalar (a string template, or a number / true / false sent as is) or a data
input `{type: uri_folder, path: "azureml://..."}` whose path is a template. Data paths must be
remote (azureml:, https:, wasbs:, abfss:): the SDK uploads LOCAL paths from the machine it runs on,
and a path built from event data must never make the function app upload its own files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jinja2

from shared.actions import ActionContext, ActionFailed
from shared.problems import Problems
from shared.templates import TemplateProblem, compile_checked, render, template_context

DATA_TYPES = ("uri_folder", "uri_file", "mltable", "mlflow_model", "custom_model", "triton_model")
REMOTE_PREFIXES = ("azureml:", "https://", "http://", "wasbs://", "wasb://", "abfss://", "adl://", "gs://", "s3://")
_INPUT_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


@dataclass(frozen=True)
class DataInput:
    type: str
    path: str


@dataclass(frozen=True)
class TemplatedInput:
    name: str
    template: jinja2.Template | None  # the string value or data path; None for a literal number / bool
    literal: Any = None
    data_type: str | None = None  # set for data inputs

    def render(self, context: Mapping[str, Any]) -> Any:
        if self.template is None:
            return self.literal
        value = render(self.template, context)
        if self.data_type is None:
            return value
        if not value.startswith(REMOTE_PREFIXES):
            raise ActionFailed(
                f"input {self.name}: path {value!r} is not a remote URI ({', '.join(REMOTE_PREFIXES)}); "
                "local paths would be uploaded from the function app"
            )
        return DataInput(self.data_type, value)


@dataclass(frozen=True)
class JobInputs:
    items: tuple[TemplatedInput, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(item.name for item in self.items)

    @classmethod
    def parse(cls, spec: Any, problems: Problems, line: int, where: str, event_types: tuple[str, ...]) -> JobInputs:
        if spec is None:
            return cls()
        if not isinstance(spec, Mapping):
            problems.add(line, f"{where} must be a mapping of input name: value")
            return cls()
        items = []
        for name, value in spec.items():
            label = f"{where}.{name}"
            if not isinstance(name, str) or not name or not set(name) <= _INPUT_NAME_CHARS:
                problems.add(line, f"{label}: input names are letters, digits and '_'")
                continue
            data_type = None
            if isinstance(value, Mapping):
                shape = dict(value)
                data_type, value = shape.get("type"), shape.get("path")
                if set(shape) - {"type", "path"} or data_type not in DATA_TYPES or not isinstance(value, str):
                    problems.add(
                        line,
                        f"{label}: a data input is {{type: one of {', '.join(DATA_TYPES)}, path: remote URI}}, "
                        f"got {shape!r}",
                    )
                    continue
            if isinstance(value, bool | int | float) and data_type is None:
                items.append(TemplatedInput(name, None, literal=value))
                continue
            if not isinstance(value, str):
                problems.add(line, f"{label}: must be a string, a number, true/false or a data input, got {value!r}")
                continue
            try:
                template = compile_checked(value, event_types)
            except TemplateProblem as problem:
                problems.add(line, f"{label}: {problem}")
                continue
            if data_type is not None and "{" not in value and not value.startswith(REMOTE_PREFIXES):
                problems.add(line, f"{label}: path must be a remote URI ({', '.join(REMOTE_PREFIXES)}), got {value!r}")
                continue
            items.append(TemplatedInput(name, template, data_type=data_type))
        return cls(tuple(items))

    def render(self, ctx: ActionContext) -> dict[str, Any]:
        """Input values for this event; a template the event cannot fill is a permanent failure."""
        context = template_context(ctx.event, ctx.route)
        try:
            return {item.name: item.render(context) for item in self.items}
        except TemplateProblem as problem:
            raise ActionFailed(f"inputs: {problem}") from None
