"""scripts/render_filters.py with routes that carry `expect:`: the subscriptions include the events that
open and follow up expectations, even where the other routes react to failures only."""

from __future__ import annotations

from scripts.render_filters import load_function_event_types, render
from shared.worker import parse_routes

FUNCTIONS = load_function_event_types()
RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"
RUN_STATUS = "Microsoft.MachineLearningServices.RunStatusChanged"

ROUTES = """
routes:
  - name: failed-models
    events: [ModelRegistered]
    when: {subject: {startswith: models/churn}}
    actions: [log]
  - name: nightly-training
    expect:
      every: {days: [mon-fri], by: "07:00", timezone: Europe/Paris}
      event: {events: [RunCompleted], when: {data.ExperimentName: churn-nightly}}
    actions: [log]
"""


def test_a_recurring_expectation_subscribes_to_what_it_waits_for_only() -> None:
    rendered = render(parse_routes(ROUTES, "routes.yaml", {}).routes, FUNCTIONS)
    assert rendered["run_events"] == {"subscribe": True, "includedEventTypes": [RUN_COMPLETED], "advancedFilters": []}
    assert rendered["model_deployed"] == {"subscribe": False}  # a recurring route opens on no event
    assert rendered["model_registered"]["advancedFilters"]  # the other route's filter still pushes down


def test_opening_and_follow_up_events_are_both_subscribed() -> None:
    routes = """
routes:
  - name: stuck-runs
    events: [RunStatusChanged]
    when: {subject: {startswith: experiments/}}
    expect:
      within: 6h
      event: {events: [RunCompleted]}
      same: [data.RunId]
    actions: [log]
"""
    rendered = render(parse_routes(routes, "routes.yaml", {}).routes, FUNCTIONS)
    assert rendered["run_events"]["includedEventTypes"] == [RUN_COMPLETED, RUN_STATUS]
    # The follow-up has no subject condition: pushing the opening's down would drop it.
    assert rendered["run_events"]["advancedFilters"] == []
