"""Bulk-import rules: every problem reported by row and column; a re-import plans nothing."""

from __future__ import annotations

from cadre.directory.domain.imports import (
    PEOPLE_COLUMNS,
    RowError,
    check_header,
    plan_people,
    plan_units,
)
from cadre.directory.domain.model import Cadre, Unit
from cadre.events.vocabulary import LeaderLevel, Role

UNITS = [
    {"unit_id": "leye", "parent_id": "wangmo", "name": "乐业镇", "level": "township"},
    {"unit_id": "wangmo", "parent_id": "demo", "name": "望谟县", "level": "county"},
    {"unit_id": "demo", "parent_id": "", "name": "示范市", "level": "city"},
]


def test_units_may_come_before_their_parents() -> None:
    plan = plan_units(UNITS, {})
    assert plan.errors == []
    paths = {u.unit_id: u.path for u in plan.new_units}
    assert paths == {"demo": "/demo", "wangmo": "/demo/wangmo", "leye": "/demo/wangmo/leye"}


def test_reimporting_the_same_units_plans_nothing() -> None:
    first = plan_units(UNITS, {})
    existing = {u.unit_id: u for u in first.new_units}
    assert plan_units(UNITS, existing).changes == 0


def test_every_unit_problem_is_reported_with_row_and_column() -> None:
    rows = [
        {"unit_id": "demo", "parent_id": "", "name": "示范市", "level": "city"},
        {"unit_id": "Bad Id", "parent_id": "demo", "name": "x", "level": "county"},
        {"unit_id": "v1", "parent_id": "demo", "name": "村", "level": "village"},
        {"unit_id": "t1", "parent_id": "nowhere", "name": "镇", "level": "township"},
        {"unit_id": "c2", "parent_id": "demo", "name": "", "level": "planet"},
        {"unit_id": "a", "parent_id": "b", "name": "A", "level": "department"},
        {"unit_id": "b", "parent_id": "a", "name": "B", "level": "department"},
        {"unit_id": "d", "parent_id": "demo", "name": "x" * 201, "level": "department"},
        {"unit_id": "e", "parent_id": "demo", "name": "办\n公室", "level": "department"},
    ]
    plan = plan_units(rows, {})
    assert set(plan.errors) >= {
        RowError(3, "unit_id", "use 1-64 lowercase letters, digits, '-' or '_'"),
        RowError(4, "level", "a village cannot sit below a city (allowed: county, department)"),
        RowError(5, "parent_id", "unknown unit 'nowhere'"),
        RowError(6, "name", "is empty"),
        RowError(9, "name", "is longer than 200 characters"),
        RowError(10, "name", "contains control characters (a tab, a line break or similar)"),
    }
    assert any(e.row == 6 and e.column == "level" for e in plan.errors)
    assert {e.row for e in plan.errors if "cycle" in e.problem} == {7, 8}


def test_header_problems_are_row_one() -> None:
    errors = check_header(["cadre_id", "name", "colour"], PEOPLE_COLUMNS)
    assert RowError(1, "username", "required column is missing") in errors
    assert RowError(1, "colour", "unknown column") in errors


def _people_rows() -> list[dict[str, str]]:
    return [
        {
            "cadre_id": "c1",
            "username": "cadre1",
            "name": "张一",
            "unit_id": "leye",
            "rank": "科员",
            "leader_level": "",
            "stationed": "是",
            "roles": "",
            "password": "demo",
        },
        {
            "cadre_id": "l1",
            "username": "township.leader",
            "name": "李镇长",
            "unit_id": "leye",
            "rank": "",
            "leader_level": "township",
            "stationed": "no",
            "roles": "leader",
            "password": "demo",
        },
    ]


def _units() -> dict[str, Unit]:
    return {u.unit_id: u for u in plan_units(UNITS, {}).new_units}


def test_people_are_planned_with_roles_and_passwords() -> None:
    plan = plan_people(_people_rows(), _units(), {})
    assert plan.errors == []
    leader = next(c for c in plan.new_cadres if c.cadre_id == "l1")
    assert leader.roles == {Role.CADRE, Role.LEADER}
    assert leader.leader_level is LeaderLevel.TOWNSHIP
    assert next(c for c in plan.new_cadres if c.cadre_id == "c1").stationed is True
    assert set(plan.passwords) == {"c1", "l1"}


def test_reimporting_the_same_people_plans_nothing_and_a_moved_unit_is_an_update() -> None:
    units = _units()
    first = plan_people(_people_rows(), units, {})
    existing = {c.cadre_id: c for c in first.new_cadres}
    same = plan_people(_people_rows(), units, existing, has_password={"c1", "l1"})
    assert same.changes == 0

    rows = _people_rows()
    rows[0]["unit_id"] = "wangmo"
    moved = plan_people(rows, units, existing, has_password={"c1", "l1"})
    [(before, after)] = moved.updated_cadres
    assert (before.unit_id, after.unit_id) == ("leye", "wangmo")


def test_people_problems_are_reported_with_row_and_column() -> None:
    rows = _people_rows()
    rows[0].update(unit_id="mars", stationed="maybe")
    rows[1].update(roles="leader,king", leader_level="emperor")
    rows.append({**_people_rows()[0], "cadre_id": "c9", "username": "old.name"})
    rows.append({**_people_rows()[0], "cadre_id": "c8", "username": "c8", "name": "张\x01八"})
    existing = {"x": Cadre("x", "old.name", "旧", "leye", roles=frozenset({Role.CADRE}))}
    plan = plan_people(rows, _units(), existing)
    assert RowError(2, "unit_id", "unknown unit 'mars'") in plan.errors
    assert RowError(2, "stationed", "'maybe' is not yes or no") in plan.errors
    assert RowError(3, "roles", "unknown role 'king'") in plan.errors
    assert RowError(3, "leader_level", "'emperor' is not township, county or city") in plan.errors
    assert RowError(4, "username", "already used by x") in plan.errors
    assert (
        RowError(5, "name", "contains control characters (a tab, a line break or similar)")
        in plan.errors
    )
    assert plan.new_cadres == []


def test_a_leader_needs_a_level() -> None:
    rows = _people_rows()
    rows[1]["leader_level"] = ""
    plan = plan_people(rows, _units(), {})
    assert RowError(3, "leader_level", "a leader needs a leader level") in plan.errors
