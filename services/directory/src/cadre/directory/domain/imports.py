"""Bulk import: rows in, a validated plan out. All or nothing: any row error rejects the
whole file, with every problem reported by row and column. Applying a plan to the state it
was made from gives the changes; re-importing the same file plans nothing."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cadre.directory.domain.model import (
    SLUG,
    Cadre,
    DirectoryRuleError,
    Unit,
    check_new_unit,
    check_roles,
    child_path,
)
from cadre.events.text import name_problem
from cadre.events.vocabulary import LeaderLevel, Role, UnitLevel

UNIT_COLUMNS = ("unit_id", "parent_id", "name", "level")
PEOPLE_COLUMNS = (
    "cadre_id",
    "username",
    "name",
    "unit_id",
    "rank",
    "leader_level",
    "stationed",
    "roles",
)
OPTIONAL_PEOPLE_COLUMNS = ("password",)
TRUE_WORDS = {"1", "true", "yes", "y", "是"}
FALSE_WORDS = {"", "0", "false", "no", "n", "否"}

Row = Mapping[str, str]


@dataclass(frozen=True)
class RowError:
    row: int  # 1-based line in the file, the header being row 1
    column: str
    problem: str


@dataclass
class ImportPlan:
    new_units: list[Unit] = field(default_factory=list)
    new_cadres: list[Cadre] = field(default_factory=list)
    updated_cadres: list[tuple[Cadre, Cadre]] = field(default_factory=list)  # (before, after)
    passwords: dict[str, str] = field(default_factory=dict)  # cadre_id -> plain text
    errors: list[RowError] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return (
            len(self.new_units)
            + len(self.new_cadres)
            + len(self.updated_cadres)
            + len(self.passwords)
        )


def check_header(
    columns: Iterable[str], required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> list[RowError]:
    present = [c.strip() for c in columns]
    errors = [RowError(1, c, "required column is missing") for c in required if c not in present]
    errors += [RowError(1, c, "unknown column") for c in present if c not in (*required, *optional)]
    return errors


def plan_units(rows: Sequence[Row], existing: Mapping[str, Unit]) -> ImportPlan:
    plan = ImportPlan()
    known = dict(existing)
    pending = {(r.get("unit_id") or "").strip(): (n, r) for n, r in enumerate(rows, start=2)}
    # Parents may come later in the file: place units once their parent is known.
    while pending:
        placed = False
        for unit_id, (line, row) in list(pending.items()):
            parent_id = (row.get("parent_id") or "").strip() or None
            if parent_id is not None and parent_id not in known and parent_id in pending:
                continue
            del pending[unit_id]
            placed = True
            unit = _unit_from_row(line, row, known, plan.errors)
            if unit is None:
                continue
            before = known.get(unit.unit_id)
            if before is None:
                plan.new_units.append(unit)
                known[unit.unit_id] = unit
            elif (before.parent_id, before.name, before.level) != (
                unit.parent_id,
                unit.name,
                unit.level,
            ):
                plan.errors.append(
                    RowError(
                        line,
                        "unit_id",
                        "exists with another parent, name or level;"
                        " the import does not move or rename units",
                    )
                )
        if not placed:  # the rest only point at each other
            for unit_id, (line, _) in pending.items():
                plan.errors.append(
                    RowError(line, "parent_id", f"{unit_id} is part of a parent cycle")
                )
            break
    return plan


def _unit_from_row(
    line: int, row: Row, known: Mapping[str, Unit], errors: list[RowError]
) -> Unit | None:
    unit_id = (row.get("unit_id") or "").strip()
    name = (row.get("name") or "").strip()
    parent_id = (row.get("parent_id") or "").strip() or None
    raw_level = (row.get("level") or "").strip().lower()
    count = len(errors)
    if (problem := name_problem(name)) is not None:
        errors.append(RowError(line, "name", problem))
    try:
        level = UnitLevel(raw_level)
    except ValueError:
        errors.append(
            RowError(
                line,
                "level",
                f"{raw_level!r} is not one of " + ", ".join(level.value for level in UnitLevel),
            )
        )
        return None
    parent = known.get(parent_id) if parent_id else None
    if parent_id and parent is None:
        errors.append(RowError(line, "parent_id", f"unknown unit {parent_id!r}"))
        return None
    try:
        check_new_unit(unit_id, level, parent)
    except DirectoryRuleError as exc:
        errors.append(RowError(line, exc.field, exc.problem))
    if len(errors) > count:
        return None
    return Unit(unit_id, parent_id, name, level, child_path(parent, unit_id))


def plan_people(
    rows: Sequence[Row],
    units: Mapping[str, Unit],
    existing: Mapping[str, Cadre],
    has_password: Collection[str] = frozenset(),
) -> ImportPlan:
    """A row's password is an initial password: it is set only for accounts in no
    `has_password` (changing a password is not an import's job), so a re-import plans
    nothing and never needs to hash."""
    plan = ImportPlan()
    seen_ids: dict[str, int] = {}
    usernames = {c.username: c.cadre_id for c in existing.values()}
    for line, row in enumerate(rows, start=2):
        cadre = _cadre_from_row(line, row, units, plan.errors)
        if cadre is None:
            continue
        if cadre.cadre_id in seen_ids:
            plan.errors.append(
                RowError(line, "cadre_id", f"repeats row {seen_ids[cadre.cadre_id]}")
            )
            continue
        seen_ids[cadre.cadre_id] = line
        owner = usernames.get(cadre.username)
        if owner is not None and owner != cadre.cadre_id:
            plan.errors.append(RowError(line, "username", f"already used by {owner}"))
            continue
        usernames[cadre.username] = cadre.cadre_id
        before = existing.get(cadre.cadre_id)
        if before is None:
            plan.new_cadres.append(cadre)
        elif _comparable(before) != _comparable(cadre):
            if before.username != cadre.username:
                plan.errors.append(RowError(line, "username", "cannot be changed by import"))
                continue
            plan.updated_cadres.append((before, cadre))
        password = (row.get("password") or "").strip()
        if password:
            if len(password) < 4:
                plan.errors.append(RowError(line, "password", "is shorter than 4 characters"))
            elif cadre.cadre_id not in has_password:
                plan.passwords[cadre.cadre_id] = password
    return plan


def _comparable(cadre: Cadre) -> tuple[object, ...]:
    return (
        cadre.username,
        cadre.name,
        cadre.unit_id,
        cadre.rank,
        cadre.leader_level,
        cadre.stationed,
        cadre.roles,
        cadre.active,
    )


def _cadre_from_row(
    line: int, row: Row, units: Mapping[str, Unit], errors: list[RowError]
) -> Cadre | None:
    count = len(errors)
    cadre_id = (row.get("cadre_id") or "").strip()
    username = (row.get("username") or "").strip()
    name = (row.get("name") or "").strip()
    unit_id = (row.get("unit_id") or "").strip()
    if not SLUG.match(cadre_id):
        errors.append(RowError(line, "cadre_id", "use 1-64 lowercase letters, digits, '-' or '_'"))
    if not username or len(username) > 64 or " " in username:
        errors.append(RowError(line, "username", "needs 1-64 characters without spaces"))
    if (problem := name_problem(name)) is not None:
        errors.append(RowError(line, "name", problem))
    if unit_id not in units:
        errors.append(RowError(line, "unit_id", f"unknown unit {unit_id!r}"))
    stationed_word = (row.get("stationed") or "").strip().lower()
    if stationed_word not in TRUE_WORDS | FALSE_WORDS:
        errors.append(RowError(line, "stationed", f"{stationed_word!r} is not yes or no"))
    level_word = (row.get("leader_level") or "").strip().lower()
    leader_level = None
    if level_word:
        try:
            leader_level = LeaderLevel(level_word)
        except ValueError:
            errors.append(
                RowError(line, "leader_level", f"{level_word!r} is not township, county or city")
            )
    roles: set[Role] = {Role.CADRE}
    for word in (row.get("roles") or "").replace(";", ",").split(","):
        if word.strip():
            try:
                roles.add(Role(word.strip().lower()))
            except ValueError:
                errors.append(RowError(line, "roles", f"unknown role {word.strip()!r}"))
    if len(errors) > count:
        return None
    try:
        check_roles(frozenset(roles), leader_level)
    except DirectoryRuleError as exc:
        errors.append(RowError(line, exc.field, exc.problem))
        return None
    return Cadre(
        cadre_id=cadre_id,
        username=username,
        name=name,
        unit_id=unit_id,
        rank=(row.get("rank") or "").strip() or None,
        leader_level=leader_level,
        stationed=stationed_word in TRUE_WORDS,
        roles=frozenset(roles),
    )
