"""The dashboard's own rules: which periods it offers, the half-year a ranking's stars come
from, how the ranking sorts and pages, how the org tree nests, and what the export writes."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
from openpyxl import load_workbook

from cadre.dashboard.adapters.export import ranking_workbook
from cadre.dashboard.domain.periods import current_periods, half_year_of
from cadre.dashboard.domain.ranking import RankingRow, SortKey, page_of, sort_rows, with_stars
from cadre.dashboard.domain.tree import build_tree


def test_the_current_periods_follow_the_tenants_day() -> None:
    assert current_periods(date(2026, 11, 23)) == {
        "month": "2026-11",
        "quarter": "2026-Q4",
        "half": "2026-H2",
    }
    assert current_periods(date(2026, 6, 30)) == {
        "month": "2026-06",
        "quarter": "2026-Q2",
        "half": "2026-H1",
    }


@pytest.mark.parametrize(
    ("period", "half"),
    [
        ("2026-06", "2026-H1"),
        ("2026-07", "2026-H2"),
        ("2026-Q2", "2026-H1"),
        ("2026-Q3", "2026-H2"),
        ("2026-H2", "2026-H2"),
    ],
)
def test_stars_come_from_the_half_year_the_period_falls_in(period: str, half: str) -> None:
    assert half_year_of(period) == half


def test_a_period_that_is_not_a_month_quarter_or_half_is_refused() -> None:
    with pytest.raises(ValueError, match="not a month"):
        half_year_of("2026-W47")


RANKED = [
    {"rank": 1, "cadre_id": "c3", "name": "丙", "composite": 9.0},
    {"rank": 2, "cadre_id": "c1", "name": "甲", "composite": 5.0},
    {"rank": 3, "cadre_id": "c2", "name": "乙", "composite": 5.0},
    {"rank": 4, "cadre_id": "c4", "name": "丁", "composite": -1.0},
]


def test_stars_are_added_by_cadre_and_missing_when_unknown() -> None:
    rows = with_stars(RANKED, {"c3": 5, "c1": 3})
    assert [(r.cadre_id, r.stars) for r in rows] == [
        ("c3", 5),
        ("c1", 3),
        ("c2", None),
        ("c4", None),
    ]
    assert all(r.stars is None for r in with_stars(RANKED, None)), "stars panel failed"


def test_sorting_keeps_ties_in_rank_order_and_puts_unknown_stars_last() -> None:
    rows = with_stars(RANKED, {"c3": 5, "c1": 3, "c4": 1})
    assert [r.cadre_id for r in sort_rows(rows, SortKey.COMPOSITE, descending=False)] == [
        "c4",
        "c1",
        "c2",
        "c3",
    ]
    assert [r.cadre_id for r in sort_rows(rows, SortKey.COMPOSITE, descending=True)] == [
        "c3",
        "c1",
        "c2",
        "c4",
    ]
    assert [r.cadre_id for r in sort_rows(rows, SortKey.STARS, descending=True)][-1] == "c2"
    assert [r.cadre_id for r in sort_rows(rows, SortKey.STARS, descending=False)][-1] == "c2"
    assert [r.cadre_id for r in sort_rows(rows, SortKey.RANK, descending=True)] == [
        "c4",
        "c2",
        "c1",
        "c3",
    ]


def test_pages_are_numbered_and_a_page_past_the_end_shows_the_last() -> None:
    rows = with_stars(RANKED, None)
    first = page_of(rows, 1, 3)
    assert (first.page, first.pages, first.total) == (1, 2, 4)
    assert [r.cadre_id for r in first.rows] == ["c3", "c1", "c2"]
    beyond = page_of(rows, 9, 3)
    assert beyond.page == 2
    assert [r.cadre_id for r in beyond.rows] == ["c4"]
    empty = page_of([], 1, 20)
    assert (empty.page, empty.pages, empty.rows) == (1, 1, [])


def test_the_tree_nests_by_parent_and_starts_where_the_viewer_can_see() -> None:
    units = [
        {
            "unit_id": "leye-v1",
            "parent_id": "leye",
            "name": "坡头村",
            "level": "village",
            "path": "/demo/wangmo/leye/leye-v1",
        },
        {
            "unit_id": "leye",
            "parent_id": "wangmo",
            "name": "乐业镇",
            "level": "township",
            "path": "/demo/wangmo/leye",
        },
        {
            "unit_id": "leye-v2",
            "parent_id": "leye",
            "name": "纳坝村",
            "level": "village",
            "path": "/demo/wangmo/leye/leye-v2",
        },
    ]
    roots = build_tree(units)
    assert [r["unit_id"] for r in roots] == ["leye"], "a township leader's tree starts there"
    assert [c["unit_id"] for c in roots[0]["children"]] == ["leye-v1", "leye-v2"]


def test_the_workbook_writes_names_with_control_characters_as_spaces() -> None:
    # Names stored before the directory refused control characters; openpyxl refuses them.
    rows = [RankingRow(rank=1, cadre_id="c1", name="张\x01三", composite=1.5, stars=3)]
    content = ranking_workbook(
        rows,
        unit_name="乐业\x0b镇",
        period="2026-10",
        generated_at=datetime(2026, 10, 31, tzinfo=UTC),
        language="zh-CN",
    )
    sheet = load_workbook(io.BytesIO(content)).active
    assert sheet is not None
    assert sheet["A1"].value == "乐业 镇 2026-10 排名"
    assert sheet["C4"].value == "张 三"
