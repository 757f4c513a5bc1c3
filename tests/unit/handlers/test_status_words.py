"""Statuses of more than one word read as words wherever people read them: titles, email subjects and
sentences, the status line of cards and messages. The tone still follows the status as Azure sends it."""

from __future__ import annotations

import pytest

from handlers.common.notice import Notice
from handlers.email.templates import EmailTemplate
from shared.events.model import status_words
from shared.events.parse import parse_event
from tests.support.events import load_event

RUN = load_event("eventgrid/run_status_changed_failed.json")


def run_with(status: str):
    return parse_event(RUN | {"data": RUN["data"] | {"runStatus": status}})


@pytest.mark.parametrize(
    ("written", "words"),
    [("NotStarted", "not started"), ("CancelRequested", "cancel requested"), ("Failed", "failed"),
     ("Completed", "completed"), ("Drift detected", "drift detected"), ("", "")],
)  # fmt: skip
def test_status_words(written: str, words: str) -> None:
    assert status_words(written) == words


def test_title_subject_and_sentence_read_as_words() -> None:
    event = run_with("NotStarted")
    assert event.title.endswith(" not started")
    content = EmailTemplate("run_failed").render(event, "route")
    assert "not started" in content.subject and "notstarted" not in content.subject.lower()
    assert "is now not started." in content.text


def test_the_status_line_reads_as_words_and_keeps_its_tone() -> None:
    not_started, failed = Notice.of(run_with("NotStarted")), Notice.of(run_with("Failed"))
    assert (not_started.status, not_started.tone) == ("Not started", "neutral")
    assert (failed.status, failed.tone) == ("Failed", "bad")
    assert Notice.of(run_with("CancelRequested")).status_words == "cancel requested"
