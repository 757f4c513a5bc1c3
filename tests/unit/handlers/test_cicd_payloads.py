"""Classes of inputs for what the CI/CD kinds build: templated JSON option values, GitHub's rate-limit
answers, Event Grid ids from ledger keys (event ids may hold any Unicode)."""

from __future__ import annotations

import time
import uuid

import httpx
from hypothesis import given
from hypothesis import strategies as st

from handlers import eventgrid, github
from handlers.common.templated_json import TemplatedJson
from shared.problems import Problems
from shared.templates import example_events
from tests.support.cicd import action_context

MODEL = example_events()["Microsoft.MachineLearningServices.ModelRegistered"]
CONTEXT = action_context()
NAMES = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=8)
LITERALS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
TREES = st.recursive(LITERALS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=3))


@given(st.dictionaries(NAMES, TREES, max_size=5))
def test_literal_values_are_sent_as_written(tree) -> None:
    problems = Problems("routes.yaml")
    values = TemplatedJson.parse(tree, problems, 1, "x", (MODEL.event_type,))
    assert not problems.items and values.render(CONTEXT, "x") == tree


@given(st.dictionaries(NAMES, LITERALS | st.sampled_from(["{{ event.fields.model_name }}", "plain"]), max_size=5))
def test_flat_values_render_as_text(spec) -> None:
    problems = Problems("routes.yaml")
    rendered = TemplatedJson.parse(spec, problems, 1, "x", (MODEL.event_type,), flat=True).render(CONTEXT, "x")
    assert not problems.items and set(rendered) == set(spec)
    assert all(isinstance(value, str) for value in rendered.values())
    assert all(rendered[k] == "churn-classifier" for k, v in spec.items() if v == "{{ event.fields.model_name }}")


@given(
    status=st.integers(200, 599),
    retry_after=st.none()
    | st.integers(0, 10_000).map(str)
    | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=5),
    remaining=st.none() | st.sampled_from(["0", "1", "4999"]),
    reset_in=st.none() | st.integers(-100, 10_000),
    message=st.sampled_from(["Not Found", "You have exceeded a secondary rate limit", "Bad credentials"]),
)
def test_github_rate_limit_waits_are_never_negative_and_only_for_403_and_429(
    status, retry_after, remaining, reset_in, message
) -> None:
    headers = {"retry-after": retry_after, "x-ratelimit-remaining": remaining,
               "x-ratelimit-reset": None if reset_in is None else str(int(time.time()) + reset_in)}  # fmt: skip
    response = httpx.Response(status, json={"message": message}, headers={k: v for k, v in headers.items() if v})
    wait = github._rate_limit_wait(response)
    if status not in (403, 429):
        assert wait is None
    elif wait is not None:
        assert wait >= 0
        if retry_after and retry_after.isdigit():
            assert wait == int(retry_after)
    else:  # a 403 that is not a rate limit: a permission problem, not worth waiting for
        assert status == 403 and "rate limit" not in message


@given(st.text())
def test_event_grid_ids_are_stable_uuids_for_any_ledger_key(key) -> None:
    assert eventgrid.event_id(key) == eventgrid.event_id(key)
    assert uuid.UUID(eventgrid.event_id(key)).version == 5
