"""Jinja's sandbox with bounds on what one render may cost: loop iterations, output size, the size of
strings and numbers built on the way, and wall-clock time.

Jinja's own sandbox stops templates from reaching Python internals, not from spending a worker's
time and memory: `{% for i in range(99999) %}{% for j in range(99999) %}…` or `{{ 'x' * 10**10 }}`
are legal templates. Here every `{% for %}` iterates through a counter (added to the template's
syntax tree when it is compiled), `*`, `**` and `%` check the size of what they would build, an
integer argument past the output bound is refused, and the output is cut at MAX_OUTPUT_CHARS.
A render past a bound raises `RenderLimit`, which the caller reports as a template problem.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

MAX_ITERATIONS = 100_000  # loop iterations in one render, over all loops
MAX_OUTPUT_CHARS = 4_000_000  # a few times the largest event (1 MB): a body may repeat a field
MAX_SECONDS = 2.0
_MAX_EXPONENT_BITS = 4096
_COUNTER_FILTER = "_bounded_iteration"
_HUGE_WIDTH = re.compile(r"[%:][^%:{}]*?\d{7,}")

_local = threading.local()


class RenderLimit(jinja2.sandbox.SecurityError):
    """A render crossed one of the bounds."""


class _Budget:
    def __init__(self) -> None:
        self.iterations = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def spend(self) -> None:
        self.iterations += 1
        if self.iterations > MAX_ITERATIONS:
            raise RenderLimit(f"the template loops more than {MAX_ITERATIONS:,} times")
        if self.iterations % 256 == 0 and time.monotonic() > self.deadline:
            raise RenderLimit(f"the template took longer than {MAX_SECONDS:g}s to render")


def _budget() -> _Budget:
    budget = getattr(_local, "budget", None)
    if budget is None:  # a render outside `render_bounded` (e.g. Template.render in a tool) still counts
        budget = _local.budget = _Budget()
    return budget


@contextlib.contextmanager
def _fresh_budget() -> Iterator[None]:
    previous = getattr(_local, "budget", None)
    _local.budget = _Budget()
    try:
        yield
    finally:
        _local.budget = previous


def _counted(iterable: Any) -> Iterator[Any]:
    budget = _budget()
    for item in iterable:
        budget.spend()
        yield item


def _check_size(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_OUTPUT_CHARS:
        raise RenderLimit(f"the number {value:.3g} is larger than a template may use as a size or count")
    return value


def _check_format(text: Any) -> None:
    """A width or precision in a format string (`%999999999s`, `{:>999999999}`) builds that much."""
    if isinstance(text, str) and _HUGE_WIDTH.search(text):
        raise RenderLimit("a format width or precision is larger than a template may use")


def _bounded_filter(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        values = args[1:] if getattr(function, "jinja_pass_arg", None) else args  # past the context
        for value in (*values[1:], *kwargs.values()):  # the first is the value filtered
            _check_size(value)
        if function.__name__ == "do_format":
            _check_format(values[0] if values else None)
        return function(*args, **kwargs)

    return bounded


class BoundedSandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _bounded_filter(function) for name, function in self.filters.items()}
        self.filters[_COUNTER_FILTER] = _counted

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _COUNTER_FILTER, [], [], None, None, lineno=loop.iter.lineno)
        return tree

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):
            _check_size(value)
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and isinstance(count, int):
                    if len(sequence) * count > MAX_OUTPUT_CHARS:
                        raise RenderLimit(f"repeating {len(sequence):,} items {count:,} times builds too much")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and abs(left) > 1 and abs(left).bit_length() * right > _MAX_EXPONENT_BITS:
                raise RenderLimit(f"{left} ** {right} is too large a number")
        elif operator == "%" and isinstance(left, str):
            _check_format(left)
            for value in right if isinstance(right, tuple) else (right,):
                _check_size(value)
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format(value.__self__)  # the format string whose method this is
        return wrapped


def render_bounded(template: jinja2.Template, context: Mapping[str, Any]) -> str:
    """Render with a fresh budget; the output is cut at MAX_OUTPUT_CHARS (RenderLimit past it)."""
    with _fresh_budget():
        chunks: list[str] = []
        size = 0
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise RenderLimit(f"the template writes more than {MAX_OUTPUT_CHARS:,} characters")
            chunks.append(chunk)
        return "".join(chunks)


def counted(items: Iterable[Any]) -> Iterator[Any]:
    """Iterate `items` against the current render's loop budget (for filters that loop in Python)."""
    return _counted(items)
