"""Org unit paths (/<county>/<township>/<village>): the one rule for "within a unit"."""


def covers(outer_path: str, unit_path: str) -> bool:
    """True when `unit_path` is `outer_path` itself or a unit below it."""
    return unit_path == outer_path or unit_path.startswith(outer_path.rstrip("/") + "/")


def ancestor_paths(unit_path: str) -> list[str]:
    """`/demo/wangmo/leye` → `/demo`, `/demo/wangmo`, `/demo/wangmo/leye`."""
    parts = [part for part in unit_path.split("/") if part]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]
