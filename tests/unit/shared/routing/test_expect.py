"""`expect:` validation (with lines) and recurring windows across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.problems import Problems
from shared.routing.expect import EventFilter, FollowUp, Recurring
from shared.routing.expect_parse import parse_expect
from shared.routing.expect_windows import last_window, next_window, window_containing, window_ending_on
from shared.routing.yamlsource import load_yaml

RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"


def parse(text: str, route_types: tuple[str, ...] = ()) -> tuple[object, list[str]]:
    problems = Problems("routes.yaml")
    spec = load_yaml(text)
    found = parse_expect(spec, problems, route_types)
    return found, problems.lines()


RSC = ("Microsoft.MachineLearningServices.RunStatusChanged",)


def test_the_issue_forms_parse() -> None:
    follow, problems = parse(
        """
events: [RunStatusChanged]
expect:
  within: 6h
  event: {events: [RunStatusChanged, RunCompleted], when: {data.RunStatus: [Completed, Failed, Canceled]}}
  same: [data.RunId]
""",
        RSC,
    )
    assert problems == []
    assert isinstance(follow, FollowUp) and follow.within == 6 * 3600 and follow.same == ("data.RunId",)
    recurring, problems = parse(
        """
expect:
  every: {days: [mon-fri], by: "07:00", timezone: Europe/Paris}
  since: "19:00"
  event: {events: [RunCompleted], when: {data.ExperimentName: churn-nightly}}
"""
    )
    assert problems == []
    assert isinstance(recurring, Recurring) and recurring.by == 420 and recurring.since == 1140
    assert recurring.days == frozenset(range(5))


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("expect:\n  within: 6h\n  event: {events: [RunCompleted]}\n  colour: red\n", 4, "unknown key 'colour'"),
        ("expect:\n  within: soon\n  event: {events: [RunCompleted]}\n", 2, "not a duration"),
        ("expect:\n  every: {by: '7am'}\n  event: {events: [RunCompleted]}\n", 2, "not a time of day"),
        ("expect:\n  every: {by: '07:00', timezone: Mars/Olympus}\n  event: {events: [RunCompleted]}\n", 2,
         "unknown timezone"),
        ("expect:\n  every: {by: '07:00', days: [someday]}\n  event: {events: [RunCompleted]}\n", 2, "not a day"),
        ("expect:\n  every: {by: '07:00'}\n  since: '25:00'\n  event: {events: [RunCompleted]}\n", 3,
         "not a time of day"),
        ("expect:\n  within: 1h\n  event: {events: [RunCompleted]}\n  same: [nonsense.Path]\n", 4, "unknown path"),
        ("expect:\n  within: 1h\n  event: {events: [RunCompleted]}\n  same: [data.ModelName]\n", 4,
         "do not carry ModelName"),
        ("expect:\n  within: 1h\n  event:\n    events: [RunFinished]\n", 4, "no function receives 'RunFinished'"),
        ("expect:\n  within: 1h\n  event:\n    events: [RunCompleted]\n    when: {data.RunStatus: Complete}\n", 5,
         "no run status Azure ML sends"),
        ("expect:\n  within: 1h\n  event:\n    events: [ModelRegistered]\n    when: {data.RunStatus: Failed}\n", 5,
         "only RunCompleted, RunStatusChanged events carry RunStatus"),
        ("expect:\n  every: {by: '07:00'}\n  event: {events: [RunCompleted]}\n  same: [data.RunId]\n", 4,
         "unknown key 'same'"),
        ("expect:\n  within: 1h\n  every: {by: '07:00'}\n  event: {events: [RunCompleted]}\n", 1, "one of them"),
    ],
)  # fmt: skip
def test_problems_name_their_line(text: str, line: int, words: str) -> None:
    _, problems = parse("events: [RunStatusChanged]\n" + text if "within" in text else text, RSC)
    shift = 1 if "within" in text else 0
    assert any(problem.startswith(f"routes.yaml:{line + shift}:") and words in problem for problem in problems), (
        problems
    )


def test_run_completed_reads_as_status_completed() -> None:
    from tests.unit.shared.noise.test_expectations import completed

    matches = EventFilter((RUN_COMPLETED,), ()).matches(completed())
    follow, _ = parse(
        "events: [RunStatusChanged]\nexpect:\n  within: 1h\n  event:\n    events: [RunCompleted]\n"
        "    when: {data.RunStatus: [Completed, Failed]}\n",
        RSC,
    )
    assert matches and isinstance(follow, FollowUp) and follow.event.matches(completed())


PARIS_SPEC = Recurring(frozenset(range(5)), 7 * 60, "Europe/Paris", EventFilter((RUN_COMPLETED,)), since=19 * 60)


def test_windows_keep_local_times_across_the_spring_change() -> None:
    # Europe/Paris moves to summer time on Sunday 2026-03-29: 07:00 is 06:00Z before, 05:00Z after.
    friday = window_ending_on(date(2026, 3, 27), PARIS_SPEC)
    monday = window_ending_on(date(2026, 3, 30), PARIS_SPEC)
    assert friday.end == datetime(2026, 3, 27, 6, 0, tzinfo=UTC)
    assert monday.start == datetime(2026, 3, 29, 17, 0, tzinfo=UTC)  # Sunday 19:00 CEST
    assert monday.end == datetime(2026, 3, 30, 5, 0, tzinfo=UTC)
    after_friday = datetime(2026, 3, 27, 6, 30, tzinfo=UTC)
    assert next_window(PARIS_SPEC, after_friday) == monday  # no deadline at the weekend
    assert window_containing(PARIS_SPEC, datetime(2026, 3, 30, 4, 59, tzinfo=UTC)) == monday
    assert window_containing(PARIS_SPEC, datetime(2026, 3, 30, 5, 0, tzinfo=UTC)) is None
    assert last_window(PARIS_SPEC, datetime(2026, 3, 30, 5, 30, tzinfo=UTC)) == monday


def test_a_window_across_the_autumn_change_is_an_hour_longer() -> None:
    spec = Recurring(frozenset(range(7)), 7 * 60, "Europe/Paris", EventFilter((RUN_COMPLETED,)))
    window = window_ending_on(date(2026, 10, 25), spec)  # summer time ends that night
    assert window.end - window.start == timedelta(hours=25)


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)), st.sampled_from(
    ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]))  # fmt: skip
def test_every_moment_has_a_next_deadline_at_the_written_local_time(naive: datetime, zone: str) -> None:
    spec = Recurring(frozenset({0, 3}), 7 * 60 + 30, zone, EventFilter((RUN_COMPLETED,)), since=22 * 60)
    moment = naive.replace(tzinfo=UTC)
    window = next_window(spec, moment)
    assert window.end > moment and window.end - moment <= timedelta(days=7, hours=2)
    local = window.end.astimezone(spec.zone)
    assert local.weekday() in spec.days
    assert (local.hour, local.minute) in ((7, 30), (8, 30))  # 8:30 only where 7:30 did not exist that day
    assert window.start < window.end
    inside = window_containing(spec, moment)
    assert inside is None or inside.start <= moment < inside.end


def test_a_route_with_expect_acts_on_missed_expectations_only() -> None:
    from shared.routing.routes import RoutesError
    from shared.worker import parse_routes

    text = """routes:
  - name: nightly
    expect:
      every: {by: "07:00"}
      event: {events: [RunCompleted]}
    group: {by: [data.ExperimentName]}
    actions:
      - webhook: {url: "https://hooks.example.com/x", body: '{"run": {{ event.data.RunId|tojson }}}'}
"""
    with pytest.raises(RoutesError) as raised:
        parse_routes(text, "routes.yaml", {})
    assert "routes.yaml:6: route 'nightly': `group` does not apply to a route with `expect:`" in raised.value.problems
    # Templates are checked against an ExpectationMissed example (which carries the opening event's data).
    table = parse_routes(text.replace("    group: {by: [data.ExperimentName]}\n", ""), "routes.yaml", {})
    (route,) = table.routes
    assert route.event_types == () and isinstance(route.expect, Recurring)
    assert route.actions[0].action.event_types == ("ExpectationMissed",)
