"""The unit ranking as the dashboard shows it: scoring's order with half-year stars added,
sortable by any column and cut into numbered pages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class SortKey(StrEnum):
    RANK = "rank"
    NAME = "name"
    COMPOSITE = "composite"
    STARS = "stars"


@dataclass(frozen=True)
class RankingRow:
    rank: int
    cadre_id: str
    name: str
    composite: float
    stars: int | None  # None: no stars known (the stars panel failed or not yet rated)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RankingPage:
    rows: list[RankingRow]
    page: int
    pages: int
    total: int


def with_stars(
    ranked: Iterable[Mapping[str, Any]], stars: Mapping[str, int] | None
) -> list[RankingRow]:
    return [
        RankingRow(
            rank=int(item["rank"]),
            cadre_id=str(item["cadre_id"]),
            name=str(item["name"]),
            composite=float(item["composite"]),
            stars=None if stars is None else stars.get(str(item["cadre_id"])),
        )
        for item in ranked
    ]


def sort_rows(rows: list[RankingRow], key: SortKey, descending: bool) -> list[RankingRow]:
    """Sort by `key`, ties by rank so the order is stable page after page. Missing stars
    sort last whichever the direction."""

    def value(row: RankingRow) -> Any:
        if key is SortKey.STARS:
            return row.stars if row.stars is not None else (-1 if descending else 99)
        return getattr(row, key.value)

    ordered = sorted(rows, key=lambda row: row.rank)
    return sorted(ordered, key=value, reverse=descending)


def page_of(rows: list[RankingRow], page: int, size: int) -> RankingPage:
    pages = max(1, -(-len(rows) // size))
    page = min(max(page, 1), pages)
    start = (page - 1) * size
    return RankingPage(rows=rows[start : start + size], page=page, pages=pages, total=len(rows))
