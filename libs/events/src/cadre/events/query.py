"""Query parameters that mean the same in every service."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import Query

# Nothing here happened before 1900, and stopping short of 9999-12-31 leaves room to step
# a day or a month past the end and to put a local midnight into UTC without overflowing
# Python's dates or PostgreSQL's timestamps.
EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(9999, 12, 1)


def day_query(alias: str | None = None, description: str | None = None) -> Any:
    """A calendar-day parameter; a day outside [EARLIEST_DAY, LATEST_DAY] is a 422."""
    # FastAPI types ge/le as numbers, but pydantic compares any ordered value, dates too.
    return Query(
        alias=alias,
        description=description,
        ge=EARLIEST_DAY,  # type: ignore[arg-type]
        le=LATEST_DAY,  # type: ignore[arg-type]
    )
