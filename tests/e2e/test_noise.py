"""Noise control end to end, through the app's own functions, against Azurite and a real local
HTTP receiver: digests (route `group:`), silences (scripts/silence.py), repeat intervals, mutes."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes

import pytest

from scripts import silence as silence_cli
from scripts.local_host import timer_request
from shared import worker
from shared.ledger.records import GROUPED
from shared.pipeline.reports import observe
from shared.platform.clock import now as ledger_now
from shared.routing.mutes import parse_mutes
from shared.routing.routes import RoutesError
from shared.worker import current_engine, parse_routes
from tests.support.events import load_event
from tests.support.ledger_calls import ledger_calls
from tests.support.receiver import Reply

FAILED_RUN = load_event("eventgrid/run_status_changed_failed.json")

DIGEST_ROUTE = """
routes:
  - name: failed-runs
    events: [RunStatusChanged]
    when: {data.RunStatus: Failed}
    group: {by: [data.ExperimentName], wait: 2m, max: 100}
    actions:
      - webhook: {url: "${HOOK_URL}/alerts", allow_private: true, retry: {attempts: 1}}
      - email: {to: mlops@contoso.com}
"""


def failed_run(experiment: str, number: int, **data: str) -> dict:
    event = copy.deepcopy(FAILED_RUN)
    run_id = f"{experiment}_child_{number:03d}"
    event["id"] = str(uuid.uuid4())
    event["subject"] = f"experiments/x/runs/{run_id}"
    event["eventTime"] = (datetime(2025, 3, 4, 10, 0, tzinfo=UTC) + timedelta(seconds=number)).isoformat()
    event["data"].update(experimentName=experiment, runId=run_id, runType="azureml.sweep.child", **data)
    return event


def flush(functions) -> None:
    functions["flush_digests"](timer_request())  # as the worker hands the timer its TimerRequest


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch):
    """`later(seconds)`: the digest store's clock moves on, so groups come due without waiting."""

    def move(seconds: float) -> None:
        monkeypatch.setattr("shared.noise.digests.now", lambda: ledger_now() + timedelta(seconds=seconds))

    return move


@pytest.mark.slow
def test_a_failed_sweep_becomes_one_digest_per_group_with_every_member_listed_and_recorded(
    noise_env, receiver, deliver, functions, tmp_path, later
) -> None:
    noise_env(DIGEST_ROUTE, HOOK_URL=receiver.url)
    events = [failed_run("sweep-a", n) for n in range(120)] + [failed_run("sweep-b", n) for n in range(80)]
    with observe() as reports:
        deliveries = [deliver("run_events", event) for event in events]
        assert all(delivery.error is None for delivery in deliveries)
        # The 100th event of sweep-a filled its group: that digest went at once, with the oldest 100.
        assert len(receiver.requests) == 1
        assert all({r.status for r in d.reports if r.function == "run_events"} == {GROUPED} for d in deliveries)
        flush(functions)
        assert len(receiver.requests) == 1  # the rest are not due yet (wait: 2m)
        later(60)
        flush(functions)
        assert len(receiver.requests) == 1
        later(121)
        flush(functions)
        flush(functions)  # nothing left: no digest twice
    digests = [request.json()["event"]["digest"] for request in receiver.requests]
    assert sorted((d["group"]["data.ExperimentName"], d["count"]) for d in digests) == [
        ("sweep-a", 20), ("sweep-a", 100), ("sweep-b", 80)
    ]  # fmt: skip
    listed = [member["id"] for d in digests for member in d["members"]]
    assert sorted(listed) == sorted(event["id"] for event in events)  # each member in exactly one digest
    digest_reports = [r for r in reports if r.function == "flush_digests"]
    assert sorted(r.status for r in digest_reports) == ["done"] * 6
    # Every member's records say which digest it went into, and the digest ids are the ledger's.
    ledger = current_engine().ledger
    digest_of = {m["id"]: request.json()["event"]["id"] for request in receiver.requests
                 for m in request.json()["event"]["digest"]["members"]}  # fmt: skip
    for event in events[::37]:
        records = list(ledger.records(event_id=event["id"]))
        assert [r.status for r in records] == [GROUPED, GROUPED]
        assert {r.extra["digest"] for r in records} == {digest_of[event["id"]]}
        assert all(r.detail == f"grouped into {digest_of[event['id']]}" for r in records)
    # The email digest lists every member of its group, in text and in HTML.
    emails = [message_from_bytes(path.read_bytes()) for path in (tmp_path / "outbox").glob("*.eml")]
    assert len(emails) == 3
    sweep_b = next(m for m in emails if "sweep-b" in m["Subject"])
    assert sweep_b["Subject"].startswith("[mlw-contoso-prod] 80 RunStatusChanged events (Failed)")
    text, html = (part.get_payload(decode=True).decode() for part in sweep_b.walk() if not part.is_multipart())
    for n in range(80):
        assert f"Run sweep-b_child_{n:03d} failed" in text and f"sweep-b_child_{n:03d}" in html


def test_a_group_survives_a_worker_restart_and_its_digest_goes_once(
    noise_env, receiver, deliver, functions, later
) -> None:
    noise_env(DIGEST_ROUTE, HOOK_URL=receiver.url)
    first, second, third = (failed_run("sweep-c", n) for n in range(3))
    assert deliver("run_events", first).statuses() == [GROUPED, GROUPED]
    worker.use_engine(None)  # a new worker: nothing of the group is in memory
    assert deliver("run_events", second).statuses() == [GROUPED, GROUPED]
    assert deliver("run_events", first).statuses() == ["skipped", "skipped"]  # a redelivery adds nothing
    worker.use_engine(None)
    deliver("run_events", third)
    later(121)
    worker.use_engine(None)
    flush(functions)
    flush(functions)
    (request,) = receiver.requests
    digest = request.json()["event"]
    assert [m["id"] for m in digest["digest"]["members"]] == [first["id"], second["id"], third["id"]]
    assert request.headers["idempotency-key"] == f"{digest['id']}/failed-runs/0"
    # A member delivered again after its digest went is still settled: no second digest.
    assert deliver("run_events", third).statuses() == ["skipped", "skipped"]
    later(500)
    flush(functions)
    assert len(receiver.requests) == 1


def test_a_digest_whose_action_failed_is_retried_without_resending_what_succeeded(
    noise_env, receiver, deliver, functions, later
) -> None:
    noise_env(DIGEST_ROUTE, HOOK_URL=receiver.url)
    receiver.script(Reply(status=500))
    deliver("run_events", failed_run("sweep-d", 1))
    later(121)
    with observe() as reports:
        flush(functions)
    assert sorted(r.status for r in reports) == ["done", "failed"]  # the email went, the webhook did not
    with observe() as reports:
        flush(functions)
    assert reports == []  # tried again a minute later, not at once
    later(121 + 61)
    with observe() as reports:
        flush(functions)
    assert sorted((r.action, r.status) for r in reports) == [("email", "skipped"), ("webhook", "done")]
    assert len(receiver.requests) == 2


SILENCED_ROUTE = """
routes:
  - name: failed-runs
    events: [RunStatusChanged]
    actions:
      - webhook: {url: "${HOOK_URL}/alerts", allow_private: true, retry: {attempts: 1}}
"""


def test_a_silence_skips_and_records_until_it_is_removed(noise_env, receiver, deliver, capsys) -> None:
    noise_env(SILENCED_ROUTE, HOOK_URL=receiver.url)
    assert silence_cli.main(["add", "--route", "nope", "--for", "2h", "--reason", "x"]) == 2
    assert "no route 'nope'" in capsys.readouterr().err
    assert silence_cli.main(["add", "--route", "failed-runs", "--when", "data.ExperimentName=exp-42",
                             "--for", "2h", "--reason", "maintenance of exp-42"]) == 0  # fmt: skip
    silence_id = capsys.readouterr().out.split()[1]
    assert silence_cli.main(["list"]) == 0
    assert silence_id in capsys.readouterr().out
    with ledger_calls() as calls:
        silenced = deliver("run_events", failed_run("exp-42", 1))
    assert silenced.statuses() == ["skipped"]
    assert dict(calls) == {"create_entity": 1}  # a held action is recorded by its claim's insert alone
    assert silenced.reports[0].detail.startswith(f"silenced: maintenance of exp-42 (silence {silence_id} where")
    assert deliver("run_events", failed_run("exp-7", 1)).statuses() == ["done"]  # other experiments still go
    (record,) = current_engine().ledger.records(event_id=silenced.reports[0].event_id)
    assert record.status == "skipped" and record.extra == {"silence": silence_id}
    assert silence_cli.main(["remove", silence_id]) == 0
    assert deliver("run_events", failed_run("exp-42", 2)).statuses() == ["done"]
    assert len(receiver.requests) == 2


def test_silence_arguments_are_checked(noise_env) -> None:
    noise_env(SILENCED_ROUTE, HOOK_URL="http://127.0.0.1:9")
    assert silence_cli.main(["add", "--route", "*", "--when", "ExperimentName=x", "--for", "1h",
                             "--reason", "r"]) == 2  # fmt: skip
    assert silence_cli.main(["add", "--route", "*", "--when", "data.x", "--for", "1h", "--reason", "r"]) == 2
    assert silence_cli.main(["add", "--route", "*", "--for", "1h", "--reason", " "]) == 2
    assert silence_cli.main(["remove", "missing"]) == 1


REPEAT_ROUTE = """
routes:
  - name: failed-runs
    events: [RunStatusChanged]
    repeat_interval: 1h
    key: "{{ event.data.experimentName }}"
    actions:
      - webhook: {url: "${HOOK_URL}/alerts", allow_private: true, retry: {attempts: 1}}
"""


def test_a_repeat_interval_skips_the_same_key_and_records_why(noise_env, receiver, deliver) -> None:
    noise_env(REPEAT_ROUTE, HOOK_URL=receiver.url)
    first = failed_run("exp-1", 1)
    assert deliver("run_events", first).statuses() == ["done"]
    repeated = deliver("run_events", failed_run("exp-1", 2))
    assert repeated.statuses() == ["skipped"]
    assert repeated.reports[0].detail.startswith("repeat_interval: 'exp-1' last notified at ")
    assert f"by event {first['id']}; no repeat until " in repeated.reports[0].detail
    assert deliver("run_events", failed_run("exp-2", 1)).statuses() == ["done"]
    assert deliver("run_events", first).reports[0].detail.startswith("already done")
    assert len(receiver.requests) == 2
    (record,) = current_engine().ledger.records(event_id=repeated.reports[0].event_id)
    assert record.status == "skipped" and record.detail == repeated.reports[0].detail


def test_a_route_in_a_mute_window_skips_and_records_it(noise_env, receiver, deliver) -> None:
    noise_env(SILENCED_ROUTE.replace("    actions:", "    mute: [{timezone: Pacific/Auckland}]\n    actions:"),
              HOOK_URL=receiver.url)  # fmt: skip
    muted = deliver("run_events", failed_run("exp-1", 1))
    assert muted.statuses() == ["skipped"]
    assert muted.reports[0].detail == "muted: route window timezone: Pacific/Auckland (Pacific/Auckland)"
    assert receiver.requests == []


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_mute_windows_follow_days_hours_midnight_and_time_zones() -> None:
    (night,), problems = parse_mutes([{"days": ["mon-fri"], "from": "22:00", "to": 360, "timezone": "Europe/Berlin"}])
    assert problems == []
    assert night.covers(at("2025-03-03T21:30:00+00:00"))  # Monday 22:30 in Berlin (UTC+1)
    assert night.covers(at("2025-03-04T04:59:00+00:00"))  # Tuesday 05:59 Berlin: Monday's window
    assert not night.covers(at("2025-03-04T05:00:00+00:00"))  # 06:00 Berlin: over
    assert not night.covers(at("2025-03-08T22:30:00+01:00"))  # Saturday night: not a window day
    assert night.covers(at("2025-03-08T05:00:00+01:00"))  # Saturday early: Friday's window
    (weekend,), _ = parse_mutes({"days": ["sat", "sun"]})
    assert weekend.covers(at("2025-03-09T23:59:00+00:00")) and not weekend.covers(at("2025-03-10T00:00:00+00:00"))


def test_a_key_without_repeat_interval_is_reported() -> None:
    text = "routes:\n  - name: r\n    events: [RunStatusChanged]\n    key: x\n    actions: [log]\n"
    with pytest.raises(RoutesError, match=r"routes.yaml:4: route 'r': `key` only applies with a repeat_interval"):
        parse_routes(text, "routes.yaml", {})


def test_bad_noise_options_are_all_reported_with_their_lines() -> None:
    text = """routes:
  - name: r
    events: [RunStatusChanged]
    group: {by: [ExperimentName], wait: soon, max: 5000, every: 1}
    key: "{{ event.nope }}"
    mute: [{days: [someday], from: "25:00", timezone: Mars/Olympus}]
    repeat_interval: often
    actions: [log]
"""
    with pytest.raises(RoutesError) as raised:
        parse_routes(text, "routes.yaml", {})
    problems = "\n".join(raised.value.problems)
    for expected in (
        "routes.yaml:4: route 'r': group: unknown key 'every'",
        "routes.yaml:4: route 'r': group.by: unknown path 'ExperimentName'",
        "routes.yaml:4: route 'r': group.wait: 'soon' is not a duration",
        "routes.yaml:4: route 'r': group.max must be a whole number from 2 to 1000, got 5000",
        "routes.yaml:5: route 'r': key: template refers to something the event does not have",
        "routes.yaml:6: route 'r': mute[0]: days: 'someday' is not a day",
        "routes.yaml:6: route 'r': mute[0]: from: '25:00' is not a time of day",
        "routes.yaml:6: route 'r': mute[0]: unknown timezone 'Mars/Olympus'",
        "routes.yaml:7: route 'r': repeat_interval: 'often' is not a duration",
    ):
        assert expected in problems


def test_teams_and_slack_list_every_member_of_a_digest_within_their_limits() -> None:
    from handlers.common.notice import Notice
    from handlers.slack import slack_message
    from handlers.teams import adaptive_card
    from shared.events.digest import DigestEvent
    from shared.events.parse import parse_event

    members = [parse_event(failed_run("sweep-[x]", n)) for n in range(200)]
    notice = Notice.of(DigestEvent.of("digest:r:1:0", "r", (("data.ExperimentName", "sweep-[x]"),), members))
    assert notice.title == "200 RunStatusChanged events (Failed) for ExperimentName sweep-[x]"
    card_text = json.dumps(adaptive_card(notice))
    assert all(f"sweep\\\\-\\\\[x\\\\]\\\\_child\\\\_{n:03d}" in card_text for n in range(200))  # escaped Markdown
    message = slack_message(notice)
    assert len(message["blocks"]) <= 50
    sections = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section" and "text" in b]
    assert all(len(text) <= 3000 for text in sections)
    assert all(any(f"sweep-[x]_child_{n:03d}" in text for text in sections) for n in range(200))
