"""The sample checker itself: it must fail on rotten samples, not only pass on good ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.samples import (
    ROOT,
    Block,
    anchors,
    blocks,
    command_problem,
    commands,
    normalise,
    output_matches,
)
from tests.docs.test_samples import routes_document


def test_ellipses_stand_for_lines_and_line_ends() -> None:
    actual = ["header", "a: one", "b: two", "c: three", "total 3"]
    assert output_matches(["header", "...", "total 3"], actual)
    assert output_matches(["header", "a: …", "...", "total 3"], actual)
    assert not output_matches(["header", "...", "total 4"], actual)
    assert not output_matches(["header", "a: two…", "..."], actual)
    assert not output_matches(["header", "a: one"], actual)


def test_what_differs_between_runs_is_masked_and_nothing_else() -> None:
    first = "2026-12-02 05:01:15  ev-123456  r  log#0  done\nsilence 3f2a9c01 added (until 2026-12-02 06:01 UTC)"
    second = "2027-01-01 10:00:00  ev-123456  r  log#0  done\nsilence 00ffaa11 added (until 2027-01-01 11:00 UTC)"
    assert normalise(first) == normalise(second)
    assert normalise(first) != normalise(first.replace("done", "failed"))


def test_the_lines_of_one_event_may_come_in_any_order_but_events_may_not() -> None:
    ordered = "ev-aaaaaa  r  log#0    done\nev-aaaaaa  r  email#1  done\nev-bbbbbb  r  log#0  done"
    swapped_actions = "ev-aaaaaa  r  email#1  done\nev-aaaaaa  r  log#0    done\nev-bbbbbb  r  log#0  done"
    swapped_events = "ev-bbbbbb  r  log#0  done\nev-aaaaaa  r  log#0    done\nev-aaaaaa  r  email#1  done"
    assert normalise(ordered) == normalise(swapped_actions)
    assert normalise(ordered) != normalise(swapped_events)


def test_commands_with_unknown_flags_missing_scripts_or_a_bare_python_are_refused() -> None:
    assert command_problem(".venv/bin/python scripts/history.py --status failed --since 1h") is None
    assert "unrecognized arguments" in (command_problem(".venv/bin/python scripts/history.py --statuz failed") or "")
    assert "not a duration" in (command_problem(".venv/bin/python scripts/history.py --since soon") or "")
    assert "does not exist" in (command_problem(".venv/bin/python scripts/no_such_script.py") or "")
    assert "project's interpreter" in (command_problem("python scripts/history.py --json") or "")


def test_console_blocks_pair_each_command_with_its_output(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("Text\n\n```console\n$ echo one\none\n$ true\n$ echo two\ntwo\n```\n")
    [block] = blocks(page)
    assert [(c.text, c.output) for c in commands(block)] == [("echo one", "one\n"), ("true", ""), ("echo two", "two\n")]


def test_yaml_that_is_not_recognisably_about_routes_needs_a_mark() -> None:
    unmarked = Block(ROOT / "README.md", 1, "yaml", "trigger: [main]\njobs: {build: {}}\n")
    with pytest.raises(AssertionError, match="sample: yaml"):
        routes_document(unmarked)
    marked = Block(ROOT / "README.md", 1, "yaml", unmarked.text, "yaml")
    assert routes_document(marked) is None


def test_heading_anchors_are_made_as_github_makes_them(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text('# Actions\n## Email (`email`)\n## Delivery history: "did the alert go out?"\n')
    assert anchors(page) == {"actions", "email-email", "delivery-history-did-the-alert-go-out"}
