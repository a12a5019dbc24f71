"""Cursors: what a service gives out comes back intact, and anything else is a 422."""

from __future__ import annotations

import base64
import string
from datetime import datetime, timedelta, timezone

import pytest

from cadre.events.pagination import (
    keyset_after,
    keyset_cursor,
    keyset_page,
    number_cursor,
    paginate,
    whole_number,
)
from cadre.events.problems import Problem


@pytest.mark.parametrize(("text", "number"), [("0", 0), ("42", 42), ("9" * 18, 10**18 - 1)])
def test_a_whole_number_is_plain_ascii_digits_that_fit_a_bigint(text: str, number: int) -> None:
    assert whole_number(text) == number


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-1",
        "+1",
        " 1",
        "1.0",
        "\u00b9",  # superscript one: str.isdigit() says yes, int() refuses it
        "\u0661",  # Arabic-Indic one: int() would read it as 1
        "9" * 19,
    ],
)
def test_anything_else_is_not_a_whole_number(text: str) -> None:
    assert whole_number(text) is None


def test_a_number_cursor_that_is_not_a_number_is_an_invalid_cursor() -> None:
    assert number_cursor("100") == 100
    with pytest.raises(Problem) as refused:
        number_cursor("\u00b9")
    assert (refused.value.status, refused.value.code) == (422, "invalid-cursor")


def test_a_keyset_cursor_round_trips_time_zone_and_key() -> None:
    china = timezone(timedelta(hours=8))
    at = datetime(2026, 11, 23, 8, 30, 15, 123456, tzinfo=china)
    cursor = keyset_cursor(at, "ci-1|x")
    assert set(cursor) <= set(string.ascii_letters + string.digits + "-_"), "URL-safe as it is"
    assert keyset_after(cursor) == (at, "ci-1|x")
    assert keyset_after(cursor)[0].utcoffset() == timedelta(0), "compared in UTC"


@pytest.mark.parametrize(
    "cursor",
    [
        "yesterday",
        "!!!",
        base64.urlsafe_b64encode(b"2026-11-23T08:00:00|id").decode(),  # no time zone
        base64.urlsafe_b64encode(b"2026-11-23T08:00:00+08:00").decode(),  # no key
        base64.urlsafe_b64encode(b"2026-11-23T08:00:00+08:00|").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe|id").decode(),
        base64.urlsafe_b64encode(b"0001-01-01T00:00:00+14:00|id").decode(),  # before year 1 UTC
    ],
)
def test_a_keyset_cursor_not_given_out_is_an_invalid_cursor(cursor: str) -> None:
    with pytest.raises(Problem) as refused:
        keyset_after(cursor)
    assert (refused.value.status, refused.value.code) == (422, "invalid-cursor")


def test_paginate_continues_after_the_cursor_key() -> None:
    items = ["d", "a", "c", "b", "e"]
    first, cursor = paginate(items, str, None, 2)
    assert (first, cursor) == (["a", "b"], "b")
    second, cursor = paginate(items, str, cursor, 2)
    assert (second, cursor) == (["c", "d"], "d")
    assert paginate(items, str, cursor, 2) == (["e"], None)


def test_a_keyset_page_drops_the_extra_row_and_continues_after_the_last_kept() -> None:
    assert keyset_page(["a", "b", "c"], 2, str.upper) == (["a", "b"], "B")
    assert keyset_page(["a", "b"], 2, str.upper) == (["a", "b"], None)
    assert keyset_page([], 2, str.upper) == ([], None)
