"""Cursor pagination, the same in every service: items in a stable order, and the cursor
is the sort key of the last item returned."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 500


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
