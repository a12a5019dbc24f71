"""Cursor pagination, the same in every service: items in a stable order, and the cursor
is the sort key of the last item returned."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from cadre.events.problems import Problem

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
# A PostgreSQL bigint holds any 18-digit number; a longer one cannot be ours.
MAX_NUMBER_DIGITS = 18


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="pass as `cursor` to get the next page; null on the last page"
    )


def paginate(
    items: Iterable[T], key: Callable[[T], str], cursor: str | None, limit: int
) -> tuple[list[T], str | None]:
    """The page after `cursor` (exclusive) in `key` order, and the cursor for the next one."""
    ordered = sorted(items, key=key)
    if cursor is not None:
        ordered = [item for item in ordered if key(item) > cursor]
    page = ordered[:limit]
    return page, (key(page[-1]) if len(ordered) > limit else None)


def keyset_page(
    rows: Sequence[T], limit: int, cursor_of: Callable[[T], str]
) -> tuple[list[T], str | None]:
    """The first `limit` of `rows`, read in SQL with one extra to know whether more follow,
    and the cursor of the next page (`cursor_of` its last item), or None on the last page."""
    page = list(rows[:limit])
    return page, (cursor_of(page[-1]) if len(rows) > limit else None)


def invalid_cursor() -> Problem:
    """The one answer to a cursor this service did not give out."""
    return Problem(422, "invalid-cursor", "Pass back the `next_cursor` of the previous page.")


def whole_number(text: str) -> int | None:
    """`text` as a number that fits a bigint, or None when it is not plain ASCII digits.

    `str.isdigit()` alone is not enough: it accepts superscripts and other scripts' digits,
    which `int()` then refuses or reads differently."""
    if not text.isascii() or not text.isdigit() or len(text) > MAX_NUMBER_DIGITS:
        return None
    return int(text)


def number_cursor(cursor: str) -> int:
    """An offset or sequence number handed out as `next_cursor`."""
    number = whole_number(cursor)
    if number is None:
        raise invalid_cursor()
    return number


def keyset_cursor(time: datetime, key: str) -> str:
    """The cursor after an item of a list in (time, key) order. URL-safe base64, so a
    client that pastes it into a query string unencoded cannot turn the zone's `+` into
    a space."""
    text = f"{time.isoformat()}|{key}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def keyset_after(cursor: str) -> tuple[datetime, str]:
    """The (time, key) a `keyset_cursor` continues after; the time always has a zone."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        at, separator, key = text.partition("|")
        after = datetime.fromisoformat(at)
        # In UTC, as the database compares it: 0001-01-01 at +14:00 has no UTC time.
        after = after.astimezone(UTC) if after.tzinfo is not None else after
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise invalid_cursor() from None
    if not separator or not key or after.tzinfo is None:
        raise invalid_cursor()
    return after, key
