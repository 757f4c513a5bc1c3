"""What the gate records for each way a route is held (grouped, repeated, silences unreadable), end to
end against Azurite: the reasons people read in the history, word for word."""

from __future__ import annotations

import copy
import logging
import re
import uuid
from typing import Any

from tests.support.delivery import only_record
from tests.support.events import load_event

FAILED_RUN = load_event("eventgrid/run_status_changed_failed.json")


def run(subject: str | None = None, experiment: str = "sweep") -> dict[str, Any]:
    event = copy.deepcopy(FAILED_RUN)
    event["id"] = str(uuid.uuid4())
    event["data"]["experimentName"] = experiment
    if subject is not None:
        event["subject"] = subject
    return event


GROUPED = """
routes:
  - name: g
    events: [RunStatusChanged]
    group: {by: [data.ExperimentName], wait: 10m, max: 2}
    actions:
      - webhook: {url: "${HOOK_URL}/digest", allow_private: true, retry: {attempts: 1}}
"""


def test_a_grouped_event_says_its_group_and_when_the_digest_is_due_and_a_full_group_goes_at_once(
    noise_env, receiver, deliver
) -> None:
    noise_env(GROUPED, HOOK_URL=receiver.url)
    first = run()
    assert deliver("run_events", first).statuses() == ["grouped"]
    record = only_record(first["id"])
    assert re.fullmatch(r"grouped in g: data\.ExperimentName=sweep; digest due by \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC",
                        record.detail), record.detail  # fmt: skip
    assert record.extra == {"group": "g: data.ExperimentName=sweep"}
    assert receiver.requests == []
    deliver("run_events", run())  # the second of max: 2 sends the digest now, not in ten minutes
    assert [request.path for request in receiver.requests] == ["/digest"]


REPEATED = """
routes:
  - name: r
    events: [RunStatusChanged]
    repeat_interval: 1h
    {key}
    actions:
      - log: {{}}
"""


def test_without_a_key_repeats_are_counted_by_subject(noise_env, deliver) -> None:
    noise_env(REPEATED.format(key=""))
    assert deliver("run_events", run("experiments/x/runs/1")).statuses() == ["done"]
    repeated = deliver("run_events", run("experiments/x/runs/1"))
    assert repeated.statuses() == ["skipped"]
    assert repeated.reports[0].detail.startswith("repeat_interval: 'experiments/x/runs/1' last notified at ")
    assert deliver("run_events", run("experiments/x/runs/2")).statuses() == ["done"]


def test_without_a_key_or_a_subject_repeats_are_counted_by_event(noise_env, deliver) -> None:
    noise_env(REPEATED.format(key=""))
    assert deliver("run_events", run("")).statuses() == ["done"]
    assert deliver("run_events", run("")).statuses() == ["done"]  # two events, two ids: no repeat


def test_a_key_template_sees_the_route(noise_env, deliver) -> None:
    noise_env(REPEATED.format(key='key: "{{ route }}/{{ event.data.experimentName }}"'))
    assert deliver("run_events", run(experiment="a")).statuses() == ["done"]
    repeated = deliver("run_events", run(experiment="a"))
    assert repeated.reports[0].detail.startswith("repeat_interval: 'r/a' last notified at ")


def test_unreadable_silences_are_said_and_the_route_acts(noise_env, deliver, caplog, monkeypatch) -> None:
    from azure.core.exceptions import ServiceRequestError

    def unreadable(*args: Any, **kwargs: Any) -> Any:
        raise ServiceRequestError("connection refused\nsecond line of the error")

    noise_env(REPEATED.format(key="").replace("    repeat_interval: 1h\n", ""))
    monkeypatch.setattr("shared.noise.silences.SilenceStore.silencing", unreadable)
    with caplog.at_level(logging.WARNING, logger="aml_events"):
        assert deliver("run_events", run()).statuses() == ["done"]
    assert "silences unavailable, acting without them: connection refused" in [r.getMessage() for r in caplog.records]


def test_a_key_the_event_cannot_fill_counts_by_subject_and_says_so(noise_env, deliver, caplog) -> None:
    noise_env(REPEATED.format(key='key: "{{ event.data.runTags.team }}"'))  # the example event has a team
    untagged = run("experiments/x/runs/9")
    untagged["data"]["runTags"] = {}
    with caplog.at_level(logging.WARNING, logger="aml_events"):
        assert deliver("run_events", untagged).statuses() == ["done"]
    (warning,) = [r.getMessage() for r in caplog.records if "counting by subject" in r.getMessage()]
    assert warning.startswith("route r: key: template refers to something the event does not have")
    again = copy.deepcopy(untagged) | {"id": str(uuid.uuid4())}
    repeated = deliver("run_events", again)
    assert repeated.reports[0].detail.startswith("repeat_interval: 'experiments/x/runs/9' last notified at ")
