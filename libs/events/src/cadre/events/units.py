"""Org unit paths (/<county>/<township>/<village>): the one rule for "within a unit"."""

import sqlalchemy as sa


def covers(outer_path: str, unit_path: str) -> bool:
    """True when `unit_path` is `outer_path` itself or a unit below it."""
    return unit_path == outer_path or unit_path.startswith(outer_path.rstrip("/") + "/")


def ancestor_paths(unit_path: str) -> list[str]:
    """`/demo/wangmo/leye` → `/demo`, `/demo/wangmo`, `/demo/wangmo/leye`."""
    parts = [part for part in unit_path.split("/") if part]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def in_subtree(column: sa.ColumnElement[str], unit_path: str) -> sa.ColumnElement[bool]:
    """SQL for `covers(unit_path, column)`: the unit itself or a path below it. LIKE, with
    its wildcards escaped (unit ids may hold `_`), so a pattern index can serve it."""
    prefix = unit_path.rstrip("/") + "/"
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return sa.or_(column == unit_path, column.like(escaped + "%", escape="\\"))
