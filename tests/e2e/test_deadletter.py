"""`replay.py --dead-letter`: Event Grid's dead-letter blobs on Azurite, replayed through the functions
into a real local receiver, marked replayed only when settled."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from azure.storage.blob import BlobServiceClient

from scripts import replay
from scripts.deadletter import REPLAYED_METADATA, DeadLetterInfo, DeadLetters
from shared.platform.clock import now
from shared.settings import current_settings
from tests.support.events import load_event
from tests.support.receiver import Reply

FAILED_RUN = load_event("eventgrid/run_status_changed_failed.json")
MODEL_REGISTERED = load_event("cloudevents/model_registered.json")

ROUTES = """
routes:
  - name: failed-runs
    events: [RunStatusChanged]
    when: {data.RunStatus: Failed}
    actions:
      - webhook: {url: "${HOOK_URL}/runs", allow_private: true, retry: {attempts: 1}}
  - name: models
    events: [ModelRegistered]
    actions:
      - webhook: {url: "${HOOK_URL}/models", allow_private: true, retry: {attempts: 1}}
"""

# As Event Grid writes them: the event plus why it died; CloudEvents in lower case.
EVENT_GRID_DEAD = [
    FAILED_RUN
    | {
        "deadLetterReason": "MaxDeliveryAttemptsExceeded",
        "deliveryAttempts": 30,
        "lastDeliveryOutcome": "TimedOut",
        "publishTime": "2025-03-04T10:00:00.0000000Z",
        "lastDeliveryAttemptTime": "2025-03-05T10:00:00.0000000Z",
    }
]
CLOUD_EVENT_DEAD = MODEL_REGISTERED | {
    "deadletterreason": "TimeToLiveExceeded",
    "deliveryattempts": 12,
    "lastdeliveryoutcome": "Busy",
    "publishtime": "2025-03-04T11:40:01.0000000Z",
}


@pytest.fixture
def container(app_env, azurite, monkeypatch) -> str:
    name = f"deadletter{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("DEAD_LETTER_CONTAINER", name)
    BlobServiceClient.from_connection_string(azurite).create_container(name)
    return name


def put(azurite: str, container: str, name: str, body: object) -> None:
    client = BlobServiceClient.from_connection_string(azurite).get_container_client(container)
    client.upload_blob(name, json.dumps(body).encode())


def metadata(azurite: str, container: str, name: str) -> dict[str, str]:
    client = BlobServiceClient.from_connection_string(azurite).get_blob_client(container, name)
    return dict(client.get_blob_properties().metadata)


def test_dead_letters_are_replayed_once_and_marked(app_env, azurite, container, receiver, capsys) -> None:
    app_env(ROUTES, HOOK_URL=receiver.url)
    put(azurite, container, "topic/failed-runs/2025/03/05/10/a.json", EVENT_GRID_DEAD)
    put(azurite, container, "topic/models/2025/03/05/10/b.json", CLOUD_EVENT_DEAD)

    assert replay.main(["--dead-letter"]) == 0
    out = capsys.readouterr().out
    assert "MaxDeliveryAttemptsExceeded after 30 attempts, last outcome TimedOut" in out
    assert "TimeToLiveExceeded after 12 attempts, last outcome Busy" in out
    assert sorted(request.path for request in receiver.requests) == ["/models", "/runs"]
    for name in ("topic/failed-runs/2025/03/05/10/a.json", "topic/models/2025/03/05/10/b.json"):
        assert REPLAYED_METADATA in metadata(azurite, container, name)

    assert replay.main(["--dead-letter"]) == 0  # the second time does nothing
    captured = capsys.readouterr()
    assert "0 dead-letter blob(s) to replay (2 replayed before)" in captured.err
    assert len(receiver.requests) == 2


def test_a_blob_is_marked_only_when_every_action_in_it_is_settled(
    app_env, azurite, container, receiver, capsys
) -> None:
    app_env(ROUTES, HOOK_URL=receiver.url)
    both = [EVENT_GRID_DEAD[0], CLOUD_EVENT_DEAD]
    put(azurite, container, "mixed.json", both)
    receiver.default = Reply(503, b"busy")  # both fail this time

    assert replay.main(["--dead-letter", "--container", container]) == 1
    assert "NOT settled, will be retried" in capsys.readouterr().out
    assert REPLAYED_METADATA not in metadata(azurite, container, "mixed.json")

    receiver.default = Reply(200)
    assert replay.main(["--dead-letter", "--container", container]) == 0
    assert "marked replayed" in capsys.readouterr().out
    assert REPLAYED_METADATA in metadata(azurite, container, "mixed.json")
    assert len(receiver.requests) == 4  # two failed, then each once more


def test_a_blob_with_an_event_still_in_progress_elsewhere_is_not_marked(
    app_env, azurite, container, receiver, capsys
) -> None:
    from shared.ledger.records import LedgerRecord
    from shared.worker import current_engine

    app_env(ROUTES, HOOK_URL=receiver.url)
    put(azurite, container, "busy.json", EVENT_GRID_DEAD)
    record = LedgerRecord(FAILED_RUN["id"], "failed-runs", 0, "webhook", "", "", function="run_events")
    current_engine().ledger.claim(record, lease_seconds=60)  # a live delivery holds the action

    assert replay.main(["--dead-letter", "--json"]) == 0
    (line,) = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert line["status"] == "skipped" and line["in_progress"] is True
    assert line["blob_settled"] is False
    assert line["dead_letter"]["reason"] == "MaxDeliveryAttemptsExceeded"
    assert REPLAYED_METADATA not in metadata(azurite, container, "busy.json")
    assert receiver.requests == []


def test_a_dead_letter_the_worker_refuses_says_so_and_is_not_marked(
    app_env, azurite, container, receiver, capsys
) -> None:
    """An eventTime the worker's converter cannot parse is why such an event was dead-lettered: every
    delivery failed before the app ran. Replaying it as it is cannot succeed; replay says so."""
    app_env(ROUTES, HOOK_URL=receiver.url)
    refused = EVENT_GRID_DEAD[0] | {"id": "refused-1", "eventTime": "2025-03-04T10:00:00+02:00"}
    put(azurite, container, "refused.json", [refused, CLOUD_EVENT_DEAD])

    assert replay.main(["--dead-letter"]) == 1
    out = capsys.readouterr().out
    assert "the Functions worker refuses an event in it before the app runs" in out
    assert "refused-1" in out and "eventTime '2025-03-04T10:00:00+02:00'" in out
    assert [request.path for request in receiver.requests] == ["/models"]  # the other event still goes
    assert REPLAYED_METADATA not in metadata(azurite, container, "refused.json")


def test_dry_run_neither_acts_nor_marks(app_env, azurite, container, receiver, capsys) -> None:
    app_env(ROUTES, HOOK_URL=receiver.url)
    put(azurite, container, "a.json", EVENT_GRID_DEAD)
    assert replay.main(["--dead-letter", "--dry-run"]) == 0
    assert "dry run" in capsys.readouterr().out
    assert receiver.requests == []
    assert REPLAYED_METADATA not in metadata(azurite, container, "a.json")


def test_unreadable_dead_letters_are_recorded_as_rejected_and_marked(app_env, azurite, container, capsys) -> None:
    from shared.worker import current_engine

    app_env(ROUTES, HOOK_URL="http://127.0.0.1:9")
    client = BlobServiceClient.from_connection_string(azurite).get_container_client(container)
    client.upload_blob("garbage.json", b'[{"id": "x", "eventType": ')
    assert replay.main(["--dead-letter"]) == 2  # rejected, recorded, nothing left to do
    assert REPLAYED_METADATA in metadata(azurite, container, "garbage.json")
    (rejection,) = current_engine().ledger.rejections()
    assert current_engine().ledger.rejected_payload(rejection) == b'[{"id": "x", "eventType": '


def test_since_selects_recent_blobs(app_env, azurite, container) -> None:
    app_env(ROUTES, HOOK_URL="http://127.0.0.1:9")
    put(azurite, container, "a.json", EVENT_GRID_DEAD)
    dead_letters = DeadLetters(current_settings())
    assert [blob.name for blob in dead_letters.blobs(now() - timedelta(hours=1))] == ["a.json"]
    assert list(dead_letters.blobs(now() + timedelta(minutes=5))) == []


def test_no_dead_letter_container_yet_means_no_dead_letters(app_env, capsys) -> None:
    app_env(ROUTES, HOOK_URL="http://127.0.0.1:9")
    assert replay.main(["--dead-letter", "--container", "nosuchcontainer"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("no dead letters: container nosuchcontainer does not exist yet") and "Traceback" not in err


def test_dead_letter_fields_in_both_schemas() -> None:
    assert DeadLetterInfo.of(EVENT_GRID_DEAD[0]).last_attempt_time == "2025-03-05T10:00:00.0000000Z"
    info = DeadLetterInfo.of(CLOUD_EVENT_DEAD)
    assert (info.reason, info.attempts, info.last_outcome) == ("TimeToLiveExceeded", 12, "Busy")
    assert DeadLetterInfo.of("not an event").summary() == "dead-lettered (no reason given)"


def test_paths_and_dead_letter_are_exclusive(capsys) -> None:
    with pytest.raises(SystemExit):
        replay.main(["--dead-letter", "x.json"])
    with pytest.raises(SystemExit):
        replay.main(["--since", "1h", "x.json"])
    assert "--dead-letter" in capsys.readouterr().err
