"""Operator configuration that would hang or exhaust a worker: bounded loading and rendering."""

from __future__ import annotations

import jinja2
import pytest
import yaml

from shared.routing.routes import RoutesError
from shared.routing.yamllimits import MAX_FILE_BYTES, LimitExceeded, check_expanded_size, check_size
from shared.sandbox import MAX_OUTPUT_CHARS, BoundedSandbox, RenderLimit, render_bounded
from shared.worker import load_routes, parse_routes

_ENV = BoundedSandbox(undefined=jinja2.StrictUndefined)

ENDLESS = [
    pytest.param("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}", id="nested-loops"),
    pytest.param("{% for i in range(9999) %}{% for j in 'abcdefghij' * 999 %}{% endfor %}{% endfor %}", id="over-text"),
    pytest.param("{{ 'x' * 10**10 }}", id="repeat"),
    pytest.param("{{ [0] * 10**9 }}", id="repeat-list"),
    pytest.param("{{ 7 ** (10**9) }}", id="power"),
    pytest.param("{{ 'x'|center(10**9) }}", id="filter-width"),
    pytest.param("{{ 'x'.ljust(10**9) }}", id="method-width"),
    pytest.param("{{ '%999999999s'|format('x') }}", id="format-filter"),
    pytest.param("{{ '%999999999s' % 'x' }}", id="percent"),
    pytest.param("{{ '{:>999999999}'.format('x') }}", id="str-format"),
    pytest.param("{% for i in range(99999) %}{{ 'abcdefghijklmnopqrstuvwxyz' * 2 }}{% endfor %}", id="huge-output"),
]


@pytest.mark.parametrize("source", ENDLESS)
def test_a_template_that_would_not_end_or_would_build_too_much_is_stopped(source: str) -> None:
    with pytest.raises(RenderLimit):
        render_bounded(_ENV.from_string(source), {})


def test_ordinary_templates_render_as_before() -> None:
    source = (
        "{% for i in range(3) %}{{ i }}{% endfor %} {{ 'ab' * 2 }} {{ '%05.1f'|format(2.5) }} {{ '{:>4}'.format(1) }}"
    )
    assert render_bounded(_ENV.from_string(source), {}) == "012 abab 002.5    1"


def test_each_render_has_its_own_budget() -> None:
    template = _ENV.from_string("{% for i in range(60000) %}{% endfor %}done")
    assert render_bounded(template, {}) == "done"
    assert render_bounded(template, {}) == "done"  # the first render's iterations are not carried over


def test_the_output_may_reach_the_bound() -> None:
    assert len(render_bounded(_ENV.from_string("{{ 'x' * n }}"), {"n": MAX_OUTPUT_CHARS})) == MAX_OUTPUT_CHARS


def _alias_bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 9)}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_the_line_that_crosses_the_bound() -> None:
    node = yaml.compose(_alias_bomb(9), Loader=yaml.SafeLoader)
    with pytest.raises(LimitExceeded) as raised:
        check_expanded_size(node)
    assert raised.value.problem_mark.line + 1 == 6  # 9**5 values, the first level past 200,000


def test_a_few_aliases_are_fine() -> None:
    check_expanded_size(yaml.compose(_alias_bomb(4), Loader=yaml.SafeLoader))


def test_a_huge_file_is_refused_with_the_line_where_reading_stops() -> None:
    line = "# " + "x" * 98 + "\n"
    with pytest.raises(LimitExceeded) as raised:
        check_size(line * (MAX_FILE_BYTES // len(line) + 10))
    assert raised.value.problem_mark.line == MAX_FILE_BYTES // len(line)
    check_size(line * 100)


# ---- through the routes loader: each bound is a validation problem with its line -----------------------

ROUTE_WITH_BODY = """routes:
  - name: r
    events: [RunStatusChanged]
    actions:
      - webhook:
          url: https://hooks.example.com/x
          body: |
            {{% for i in range(99999) %}}{{% for j in range(99999) %}}{{% endfor %}}{{% endfor %}}
            {body}
"""


@pytest.mark.parametrize(
    "body", ["{{ 'x' * 10**10 }}", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "{{ '%999999999d' % 1 }}"]
)
def test_a_template_past_a_bound_is_a_validation_problem_with_its_line(body: str) -> None:
    with pytest.raises(RoutesError) as raised:
        parse_routes(ROUTE_WITH_BODY.format(body=body), "routes.yaml", {})
    (problem,) = raised.value.problems
    assert problem.startswith("routes.yaml:5: ") and "webhook: body" in problem, problem


def test_an_alias_bomb_in_routes_yaml_is_a_problem_with_its_line() -> None:
    text = _alias_bomb(9) + "routes: []\n"
    with pytest.raises(RoutesError) as raised:
        parse_routes(text, "routes.yaml", {})
    (problem,) = raised.value.problems
    assert problem.startswith("routes.yaml:6: YAML too large: the document expands to more than 200,000 values")


def test_a_huge_routes_file_is_refused_without_reading_it_all(tmp_path) -> None:
    path = tmp_path / "routes.yaml"
    text = "routes:\n" + "  # a comment line of forty bytes......\n" * (MAX_FILE_BYTES // 40 + 10)
    path.write_text(text)
    with pytest.raises(RoutesError) as raised:
        load_routes(path, {})
    (problem,) = raised.value.problems
    crossing = text[:MAX_FILE_BYTES].count("\n") + 1
    assert problem == f"{path}:{crossing}: YAML too large: the file is larger than {MAX_FILE_BYTES:,} bytes", problem
