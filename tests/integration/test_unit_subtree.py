"""`in_subtree` selects in SQL exactly what `covers` accepts in Python, with unit ids that
hold LIKE's wildcards."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from cadre.events.units import covers, in_subtree

pytestmark = pytest.mark.asyncio

PATHS = [
    "/demo",
    "/demo/le_ye",
    "/demo/le_ye/v1",
    "/demo/lexye/v",  # below /demo/le_ye only if `_` were a wildcard
    "/demo/le_ye2",  # a sibling whose id starts with the same letters
    "/demo/100%",
    "/demo/100%/v",
    "/demo/1000/v",  # matches /demo/100% only if `%` were a wildcard
    "/other/le_ye",
]


@pytest.mark.parametrize("outer", ["/demo", "/demo/le_ye", "/demo/100%", "/other"])
async def test_in_subtree_agrees_with_covers(spine_db: tuple[str, AsyncEngine], outer: str) -> None:
    path = sa.column("path", sa.Text)
    rows = sa.values(path, name="units").data([(p,) for p in PATHS])
    async with spine_db[1].connect() as connection:
        selected = set(
            await connection.scalars(sa.select(rows.c.path).where(in_subtree(rows.c.path, outer)))
        )
    assert selected == {p for p in PATHS if covers(outer, p)}
