"""The directory's state as plain values, and the rules of the org tree. Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cadre.events.vocabulary import LeaderLevel, Role, UnitLevel

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

# Which levels may sit directly below which (city → county → township → village; a
# department may hang below any administrative level).
ALLOWED_CHILDREN: dict[UnitLevel | None, frozenset[UnitLevel]] = {
    None: frozenset({UnitLevel.CITY, UnitLevel.COUNTY}),
    UnitLevel.CITY: frozenset({UnitLevel.COUNTY, UnitLevel.DEPARTMENT}),
    UnitLevel.COUNTY: frozenset({UnitLevel.TOWNSHIP, UnitLevel.DEPARTMENT}),
    UnitLevel.TOWNSHIP: frozenset({UnitLevel.VILLAGE, UnitLevel.DEPARTMENT}),
    UnitLevel.DEPARTMENT: frozenset({UnitLevel.DEPARTMENT}),
    UnitLevel.VILLAGE: frozenset(),
}

# The unit level a leader of each level is expected to lead.
LEADER_UNIT_LEVEL: dict[LeaderLevel, UnitLevel] = {
    LeaderLevel.TOWNSHIP: UnitLevel.TOWNSHIP,
    LeaderLevel.COUNTY: UnitLevel.COUNTY,
    LeaderLevel.CITY: UnitLevel.CITY,
}


@dataclass(frozen=True)
class Unit:
    unit_id: str
    parent_id: str | None
    name: str
    level: UnitLevel
    path: str


@dataclass(frozen=True)
class Cadre:
    cadre_id: str
    username: str
    name: str
    unit_id: str
    rank: str | None = None
    leader_level: LeaderLevel | None = None
    stationed: bool = False
    roles: frozenset[Role] = field(default_factory=lambda: frozenset({Role.CADRE}))
    active: bool = True


class DirectoryRuleError(ValueError):
    """A change breaks a directory rule; `field` names what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def child_path(parent: Unit | None, unit_id: str) -> str:
    """Paths are the chain of unit ids from the top, as in /gz/wangmo/leye."""
    return f"{parent.path}/{unit_id}" if parent else f"/{unit_id}"


def check_new_unit(unit_id: str, level: UnitLevel, parent: Unit | None) -> None:
    if not SLUG.match(unit_id):
        raise DirectoryRuleError("unit_id", "use 1-64 lowercase letters, digits, '-' or '_'")
    allowed = ALLOWED_CHILDREN[parent.level if parent else None]
    if level not in allowed:
        where = f"below a {parent.level.value}" if parent else "at the top of the tree"
        options = ", ".join(sorted(level.value for level in allowed)) or "nothing"
        raise DirectoryRuleError(
            "level", f"a {level.value} cannot sit {where} (allowed: {options})"
        )


def check_roles(roles: frozenset[Role], leader_level: LeaderLevel | None) -> None:
    if Role.LEADER in roles and leader_level is None:
        raise DirectoryRuleError("leader_level", "a leader needs a leader level")
    if leader_level is not None and Role.LEADER not in roles:
        raise DirectoryRuleError("roles", "a leader level is given but the leader role is not")
