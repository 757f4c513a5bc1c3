"""What is kept of an input no function takes: its problem named truly, its claimed type, its shape."""

from __future__ import annotations

from typing import Any

import pytest

from shared.events.parse import envelope_problem, raw_for_record, written_event_type
from tests.support.events import load_event

RUN = load_event("eventgrid/run_status_changed_failed.json")


@pytest.mark.parametrize(
    ("item", "words", "event_id"),
    [
        (7, "an event must be a JSON object with eventType (or type), got int", None),
        ({"id": "a", "SpecVersion": "1.0", "type": "x"}, "SpecVersion: CloudEvents attribute names are lower case: "
         "write 'specversion' (as sent, the event is neither a CloudEvent nor an Event Grid event)", "a"),
        ({"id": 5}, "eventType: is missing", None),
        ({"id": "b", "type": "x"}, "eventType: is missing (a CloudEvent also needs 'specversion')", "b"),
        ({"id": "c", "specversion": "1.0"}, "type: is missing", "c"),
        ({"id": "d", "eventType": ["x"]}, "eventType: must be a string, got list", "d"),
        ({"id": "e", "specversion": "1.0", "type": "Nope"}, "type: 'Nope' is not an event type any function of "
         "this app takes", "e"),
    ],
)  # fmt: skip
def test_the_envelope_problem_is_named_truly(item: Any, words: str, event_id: str | None) -> None:
    problem = envelope_problem(item)
    assert (str(problem), problem.event_id) == (words, event_id)
    assert problem.field == words.split(": ", 1)[0] if ": " in words else problem.field == ""


def test_a_miscased_specversion_next_to_the_right_one_is_not_the_problem() -> None:
    assert str(envelope_problem({"specversion": "1.0", "SpecVersion": "1.0"})) == "type: is missing"


def test_the_claimed_type_is_kept_bounded_whatever_the_input() -> None:
    assert written_event_type({"eventType": "A"}) == "A"
    assert written_event_type({"type": "B"}) == "B"
    assert written_event_type({"eventType": "", "type": "C"}) == "C"
    assert written_event_type({"eventType": "x" * 500}) == "x" * 200
    assert written_event_type({"eventType": 7}) is None
    assert written_event_type(None) is None

    class GridBinding:
        event_type = "D"

    class CloudBinding:
        type = "E"

    assert written_event_type(GridBinding()) == "D" and written_event_type(CloudBinding()) == "E"


def test_a_binding_object_is_kept_as_its_fields_and_data() -> None:
    from scripts.local_host import binding_for

    kept = raw_for_record(binding_for(RUN))
    assert kept["id"] == RUN["id"] and kept["event_type"] == RUN["eventType"] and kept["topic"] == RUN["topic"]
    assert kept["subject"] == RUN["subject"] and kept["data"] == RUN["data"]

    class Unreadable:
        id = "u"

        def get_json(self) -> Any:
            raise ValueError("not JSON")

    assert raw_for_record(Unreadable()) == {"id": "u", "data": None}

    class Cloud:
        id, type, source, subject, data_version = "c", "T", "S", "s", "1"

        def get_json(self) -> Any:
            return {"x": 1}

    assert raw_for_record(Cloud()) == {"id": "c", "subject": "s", "type": "T", "source": "S", "data_version": "1",
                                       "data": {"x": 1}}  # fmt: skip
    assert raw_for_record({"plain": 1}) == {"plain": 1}
