"""Keys and file names from untrusted text: storable, bounded, and never shared by distinct texts."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.platform.tables import derived_key, file_name, table_key

# Everything a JSON string can carry, lone surrogates included, short and long.
any_text = st.text(alphabet=st.characters(codec=None, min_codepoint=0), max_size=40) | st.builds(
    lambda text, times: text * times, st.text(max_size=8), st.integers(0, 2000)
)
_FORBIDDEN = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


def _table_size(key: str) -> int:
    return max(len(key.encode("utf-8")), len(key.encode("utf-16-le")))


@given(any_text)
def test_a_storable_key_has_no_forbidden_character_and_fits_a_table_key(text: str) -> None:
    key = table_key(text)
    assert not _FORBIDDEN.search(key)
    key.encode("utf-8")  # no lone surrogate: the service could not read it
    assert _table_size(key) <= 640


@settings(max_examples=300)
@given(any_text, any_text)
def test_distinct_texts_never_share_a_key(left: str, right: str) -> None:
    if left != right:
        assert table_key(left) != table_key(right)
        assert file_name(left, ".eml") != file_name(right, ".eml")
        assert derived_key(table_key(left)) != table_key(right)


def test_the_collisions_found_in_review_are_gone() -> None:
    pairs = [
        (" ws-1 ", "ws-1"),
        ("\ud800", "\\ud800"),
        ("a" * 200 + "x", "a" * 200 + "y"),
        ("x" * 5000, "x" * 5001),
    ]
    for left, right in pairs:
        assert table_key(left) != table_key(right)
    names = {file_name(text, ".eml") for text in ("a/b", "a?b", "a b", "a_b", "A_b", "a" * 200 + "1", "a" * 200 + "2")}
    assert len(names) == 7


def test_a_derived_key_is_out_of_reach_of_any_incoming_id() -> None:
    # An incoming event whose id ends the way a derived signal's does keeps a key of its own.
    assert derived_key(table_key("run-1")) != table_key("run-1/model-monitor")
    assert derived_key(table_key("run-1")) != table_key("run-1%!derived")


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=60))
def test_plain_ids_stay_readable(text: str) -> None:
    assert table_key(text) == text
    assert file_name(text) == text


@given(any_text)
def test_a_file_name_is_one_plain_path_segment(text: str) -> None:
    name = file_name(text, ".eml")
    assert re.fullmatch(r"[a-z0-9_-][a-z0-9._~-]*\.eml", name), name
    assert len(name) <= 110
