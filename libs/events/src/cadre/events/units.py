"""Org unit paths (/<county>/<township>/<village>): the one rule for "within a unit"."""


def covers(outer_path: str, unit_path: str) -> bool:
    """True when `unit_path` is `outer_path` itself or a unit below it."""
    return unit_path == outer_path or unit_path.startswith(outer_path.rstrip("/") + "/")
