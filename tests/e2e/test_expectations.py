"""Deadlines and absences end to end (route `expect:`), through the app's own functions, against
Azurite and a real local HTTP receiver, with the app's clock set by the test: a follow-up in time,
late, never; a duplicate opening event; two timers at once; a worker restart between open and fire;
a recurring expectation across a daylight-saving change; a silence covering the fire."""

from __future__ import annotations

import copy
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scripts import silence as silence_cli
from shared import worker
from shared.ledger.records import DONE, SKIPPED
from shared.pipeline.reports import ActionReport, observe
from shared.platform.clock import frozen_at
from tests.support.events import EVENTS, load_event
from tests.support.scripts import lines, replay

RUNNING = load_event("expectations/run_status_running.json")
COMPLETED = load_event("eventgrid/run_completed.json")

STUCK = """
routes:
  - name: stuck-runs
    events: [RunStatusChanged]
    when: {data.RunStatus: Running}
    expect:
      within: 6h
      event: {events: [RunStatusChanged, RunCompleted], when: {data.RunStatus: [Completed, Failed, Canceled]}}
      same: [data.RunId]
      resolved_late: true
    actions:
      - webhook: {url: "${HOOK_URL}/stuck", allow_private: true, retry: {attempts: 1}}
"""

NIGHTLY = """
routes:
  - name: nightly-training
    expect:
      every: {days: [mon-fri], by: "07:00", timezone: Europe/Paris}
      since: "19:00"
      event: {events: [RunCompleted], when: {data.ExperimentName: churn-nightly}}
    actions:
      - webhook: {url: "${HOOK_URL}/nightly", allow_private: true, retry: {attempts: 1}}
"""

ONE_AM = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def expect_env(app_env, receiver, tmp_path: Path):
    """app_env with tables of the test's own for expectations, silences and repeat counters."""
    suffix = uuid.uuid4().hex[:8]

    def write_routes(text: str, **settings: str) -> Path:
        return app_env(text, EXPECT_TABLE=f"expect{suffix}", SILENCE_TABLE=f"silences{suffix}",
                       GUARDRAIL_TABLE=f"guardrails{suffix}", SILENCE_CACHE_SECONDS="0",
                       HOOK_URL=receiver.url, **settings)  # fmt: skip

    return write_routes


def run_event(template: dict[str, Any], run_id: str, at: datetime, **data: Any) -> dict[str, Any]:
    event = copy.deepcopy(template)
    event["id"] = str(uuid.uuid4())
    event["eventTime"] = at.isoformat()
    event["subject"] = f"experiments/e/runs/{run_id}"
    event["data"].update(runId=run_id, **data)
    return event


def at(moment: datetime, deliver, event: dict[str, Any]):
    with frozen_at(moment):
        return deliver("run_events", event)


def tick(moment: datetime, functions) -> list[ActionReport]:
    """The check_expectations timer, as the host runs it (the function ignores its TimerRequest)."""
    with frozen_at(moment), observe() as reports:
        functions["check_expectations"](None)
    return reports


def posts(receiver, path: str) -> list[dict[str, Any]]:
    return [request.json() for request in receiver.requests if request.path == path]


def test_a_follow_up_in_time_closes_silently(expect_env, deliver, functions, receiver) -> None:
    expect_env(STUCK)
    opened = at(ONE_AM, deliver, run_event(RUNNING, "run-1", ONE_AM))
    assert [(r.route, r.status) for r in opened.reports] == [("stuck-runs", "opened")]
    assert "due 2026-12-02 07:00 UTC" in opened.reports[0].detail
    done = ONE_AM + timedelta(hours=2)
    closed = at(done, deliver, run_event(COMPLETED, "run-1", done))
    assert [r.status for r in closed.reports] == ["closed"] and closed.error is None
    assert tick(ONE_AM + timedelta(hours=7), functions) == []
    assert receiver.requests == []


def test_never_followed_up_fires_once_and_says_what_did_not_happen(expect_env, deliver, functions, receiver) -> None:
    expect_env(STUCK)
    at(ONE_AM, deliver, run_event(RUNNING, "run-1", ONE_AM))
    assert tick(ONE_AM + timedelta(hours=5, minutes=59), functions) == []
    fired = tick(datetime(2026, 12, 2, 7, 30, tzinfo=UTC), functions)
    assert [(r.route, r.event_type, r.status) for r in fired] == [("stuck-runs", "ExpectationMissed", DONE)]
    assert tick(datetime(2026, 12, 2, 7, 31, tzinfo=UTC), functions) == []  # nothing new
    (body,) = posts(receiver, "/stuck")
    expectation = body["event"]["expectation"]
    assert expectation["status"] == "Missed" and expectation["deadline"].startswith("2026-12-02T07:00")
    assert expectation["opening"]["data"]["runId"] == "run-1"
    assert "runs/run-1" in body["event"]["studioUrl"]
    assert body["event"]["title"].startswith("Run run-1 running: no RunStatusChanged or RunCompleted")


def test_a_late_follow_up_closes_and_sends_resolved_late(expect_env, deliver, functions, receiver) -> None:
    expect_env(STUCK)
    at(ONE_AM, deliver, run_event(RUNNING, "run-1", ONE_AM))
    tick(ONE_AM + timedelta(hours=6, minutes=1), functions)
    late = ONE_AM + timedelta(hours=8)
    closing = at(late, deliver, run_event(COMPLETED, "run-1", late))
    assert [(r.status, r.event_type) for r in closing.reports] == [
        ("late", "Microsoft.MachineLearningServices.RunCompleted"), (DONE, "ExpectationResolvedLate"),
    ]  # fmt: skip
    (notice,) = posts(receiver, "/stuck")[1:]
    assert notice["event"]["expectation"]["status"] == "Resolved late"
    assert "2h00 after the deadline" in notice["event"]["title"]
    again = at(late, deliver, run_event(COMPLETED, "run-1", late))  # another follow-up: already closed
    assert [r.status for r in again.reports] == ["ignored"] and len(posts(receiver, "/stuck")) == 2


def test_an_opening_event_delivered_twice_opens_one_expectation(expect_env, deliver, functions, receiver) -> None:
    expect_env(STUCK)
    event = run_event(RUNNING, "run-1", ONE_AM)
    at(ONE_AM, deliver, event)
    second = at(ONE_AM + timedelta(minutes=1), deliver, event)
    assert [r.status for r in second.reports] == ["open"]
    fired = tick(ONE_AM + timedelta(hours=6, minutes=2), functions)
    assert [r.status for r in fired] == [DONE] and len(posts(receiver, "/stuck")) == 1


def test_two_timers_at_once_act_once(expect_env, deliver, functions, receiver) -> None:
    expect_env(STUCK)
    for number in range(5):
        at(ONE_AM, deliver, run_event(RUNNING, f"run-{number}", ONE_AM))
    moment = ONE_AM + timedelta(hours=6, minutes=1)
    with frozen_at(moment), observe() as reports, ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(functions["check_expectations"], None) for _ in range(2)]:
            future.result()
    assert sorted(r.status for r in reports if r.status == DONE) == [DONE] * 5
    assert len(posts(receiver, "/stuck")) == 5
    assert len({request.headers["idempotency-key"] for request in receiver.requests}) == 5


def test_a_worker_restart_between_open_and_fire_loses_nothing(expect_env, deliver, functions, receiver) -> None:
    expect_env(STUCK)
    at(ONE_AM, deliver, run_event(RUNNING, "run-1", ONE_AM))
    worker.use_engine(None)  # a new worker: nothing in memory survives
    fired = tick(ONE_AM + timedelta(hours=6, minutes=1), functions)
    assert [r.status for r in fired] == [DONE] and len(posts(receiver, "/stuck")) == 1


def test_a_recurring_expectation_keeps_its_local_deadline_across_dst(expect_env, deliver, functions, receiver) -> None:
    # Europe/Paris moves to summer time on Sunday 2026-03-29: Monday's 07:00 is 05:00 UTC, Friday's 06:00.
    expect_env(NIGHTLY)
    tick(datetime(2026, 3, 26, 12, 0, tzinfo=UTC), functions)  # arms Friday's window
    thursday_evening = datetime(2026, 3, 26, 22, 0, tzinfo=UTC)
    nightly = run_event(COMPLETED, "nightly-1", thursday_evening, experimentName="churn-nightly")
    counted = at(thursday_evening, deliver, nightly)
    assert [r.status for r in counted.reports] == ["closed"]
    assert tick(datetime(2026, 3, 27, 6, 1, tzinfo=UTC), functions) == []  # Friday: it came
    assert tick(datetime(2026, 3, 30, 4, 59, tzinfo=UTC), functions) == []  # Monday, 06:59 CEST
    fired = tick(datetime(2026, 3, 30, 5, 1, tzinfo=UTC), functions)  # Monday 07:01 CEST: nothing came
    assert [(r.event_type, r.status) for r in fired] == [("ExpectationMissed", DONE)]
    (body,) = posts(receiver, "/nightly")
    expectation = body["event"]["expectation"]
    assert expectation["window"] == "2026-03-30 (Europe/Paris)"
    assert expectation["since"].startswith("2026-03-29T17:00")  # Sunday 19:00 CEST
    assert "experiments/id/" in body["event"]["studioUrl"]  # the experiment of the last run seen


def test_a_silence_covering_the_fire_skips_and_records_it(expect_env, deliver, functions, receiver) -> None:
    expect_env(STUCK)
    at(ONE_AM, deliver, run_event(RUNNING, "run-1", ONE_AM))
    with frozen_at(ONE_AM):
        assert silence_cli.main(["add", "--route", "stuck-runs", "--for", "12h", "--reason", "maintenance"]) == 0
    fired = tick(ONE_AM + timedelta(hours=6, minutes=1), functions)
    assert [r.status for r in fired] == [SKIPPED] and "silenced" in fired[0].detail
    assert receiver.requests == []
    assert tick(ONE_AM + timedelta(hours=6, minutes=2), functions) == []  # settled: not fired again


def test_replay_delivers_at_now_and_ticks_the_timers(azurite, tmp_path: Path) -> None:
    """The local try-out of docs/expectations.md: Running at 01:00, a tick at 07:30 fires, a second tick
    shows nothing new (three separate runs sharing the storage, as a user runs them)."""
    routes = tmp_path / "routes.yaml"
    routes.write_text(STUCK.replace('webhook: {url: "${HOOK_URL}/stuck", allow_private: true, retry: {attempts: 1}}',
                                    "log: {level: warning}"))  # fmt: skip
    suffix = uuid.uuid4().hex[:8]
    env = {"PATH": "", "AzureWebJobsStorage": azurite, "LEDGER_TABLE": f"ledger{suffix}",
           "EXPECT_TABLE": f"expect{suffix}"}  # fmt: skip
    running = str(EVENTS / "expectations" / "run_status_running.json")
    opened = replay("--json", "--routes", str(routes), "--now", "2026-12-02T01:00:00Z", running, env=env)
    assert opened.returncode == 0, opened.stderr
    assert [(o["route"], o["status"]) for o in lines(opened)] == [("stuck-runs", "opened")]
    early = replay("--json", "--routes", str(routes), "--tick", "2026-12-02T06:59:00", env=env)
    assert early.returncode == 0 and lines(early) == []
    fired = replay("--json", "--routes", str(routes), "--tick", "2026-12-02T07:30:00+00:00", env=env)
    assert [(o["event_type"], o["action"], o["status"]) for o in lines(fired)] == [("ExpectationMissed", "log", DONE)]
    again = replay("--routes", str(routes), "--tick", "2026-12-02T07:31:00Z", env=env)
    assert again.returncode == 0 and "ExpectationMissed" not in again.stdout


def test_replay_checks_its_times() -> None:
    result = replay("--tick", "tomorrow morning")
    assert result.returncode == 2 and "not an ISO 8601 time" in result.stderr


EVERY_FORM = """
routes:
  - name: nightly-training
    expect:
      every: {by: "07:00", timezone: Europe/Paris}
      event: {events: [RunCompleted], when: {data.ExperimentName: churn-nightly}}
    repeat_interval: 1h
    actions:
      - email: {to: [mlops@contoso.com]}
      - teams: {url: "${HOOK_URL}/teams", allow_private: true, retry: {attempts: 1}}
      - slack: {url: "${HOOK_URL}/slack", allow_private: true, retry: {attempts: 1}}
      - webhook: {url: "${HOOK_URL}/hook", allow_private: true, retry: {attempts: 1}}
"""


def test_every_message_form_says_what_did_not_happen_and_since_when(
    expect_env, functions, receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import email
    import email.policy

    for name in ("ACS_ENDPOINT", "ACS_CONNECTION_STRING", "EMAIL_SENDER"):
        monkeypatch.delenv(name, raising=False)
    outbox = tmp_path / "outbox"
    expect_env(EVERY_FORM, EMAIL_OUTBOX=str(outbox))
    tick(datetime(2026, 12, 1, 12, 0, tzinfo=UTC), functions)  # arms the window ending Dec 2 07:00 Paris
    fired = tick(datetime(2026, 12, 2, 6, 1, tzinfo=UTC), functions)
    assert [r.status for r in fired] == [DONE] * 4, [r.detail for r in fired]
    expected = "RunCompleted with ExperimentName churn-nightly by 07:00 Europe/Paris every day"
    since = "2026-12-01 06:00 UTC"

    (path,) = outbox.iterdir()
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["Subject"] == f"Missed: {expected} (nightly-training)"
    text = message.get_body(("plain",)).get_content()
    assert f"Nothing of the kind arrived between {since} and the deadline, 2026-12-02 06:00 UTC" in text
    assert "Window: 2026-12-02 (Europe/Paris)" in text and "Open in Azure ML studio" not in text  # no run seen

    card = posts(receiver, "/teams")[0]["attachments"][0]["content"]
    title, status, factset = card["body"]
    assert title["text"].startswith("No RunCompleted with ExperimentName churn\\-nightly")
    assert (status["text"], status["color"]) == ("Missed", "Attention")
    facts = {fact["title"]: fact["value"] for fact in factset["facts"]}
    assert facts["Since"] == since.replace("-", "\\-") and card["actions"] == []
    slack = posts(receiver, "/slack")[0]
    assert slack["text"].endswith(": Missed") and "actions" not in {block["type"] for block in slack["blocks"]}
    assert posts(receiver, "/hook")[0]["event"]["expectation"]["window"] == "2026-12-02 (Europe/Paris)"


def test_mutes_and_repeat_interval_apply_to_missed_expectations(expect_env, deliver, functions, receiver) -> None:
    # 2026-12-02 is a Wednesday: the mute covers the first fire; repeat_interval the second one of the same run.
    expect_env(STUCK.replace("    actions:\n", "    mute: [{days: [wed], from: '06:00', to: '08:00'}]\n"
                             "    repeat_interval: 24h\n    actions:\n"))  # fmt: skip
    at(ONE_AM, deliver, run_event(RUNNING, "run-1", ONE_AM))
    muted = tick(ONE_AM + timedelta(hours=6, minutes=1), functions)
    assert [r.status for r in muted] == [SKIPPED] and muted[0].detail.startswith("muted")
    noon = ONE_AM + timedelta(hours=11)
    assert [r.status for r in at(noon, deliver, run_event(RUNNING, "run-1", noon)).reports] == ["opened"]
    fired = tick(noon + timedelta(hours=6, minutes=1), functions)  # 18:01, outside the mute
    assert [r.status for r in fired] == [DONE] and len(posts(receiver, "/stuck")) == 1
    midnight = noon + timedelta(hours=12)
    at(midnight, deliver, run_event(RUNNING, "run-1", midnight))
    repeated = tick(midnight + timedelta(hours=6, minutes=1), functions)
    assert [r.status for r in repeated] == [SKIPPED] and "repeat" in repeated[0].detail
    assert len(posts(receiver, "/stuck")) == 1


def test_a_dry_run_says_what_an_event_would_do_to_expectations(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(STUCK.replace('"${HOOK_URL}/stuck"', '"https://hooks.example.com/stuck"'))
    running = str(EVENTS / "expectations" / "run_status_running.json")
    result = replay("--dry-run", "--json", "--routes", str(routes), running, env={"PATH": ""})
    assert result.returncode == 0, result.stderr
    (plan,) = lines(result)
    assert (plan["route"], plan["status"]) == ("stuck-runs", "planned")
    assert plan["detail"].startswith("would open an expectation: RunStatusChanged or RunCompleted with RunStatus")
