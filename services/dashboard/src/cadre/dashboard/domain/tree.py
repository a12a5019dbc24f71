"""The org tree from the directory's flat, path-ordered list of units."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def build_tree(units: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Nest units under their parents. A unit whose parent the viewer may not see becomes
    a root: a township leader's tree starts at their township."""
    nodes: dict[str, dict[str, Any]] = {}
    roots: list[dict[str, Any]] = []
    for unit in sorted(units, key=lambda u: str(u["path"])):
        node = {
            "unit_id": unit["unit_id"],
            "name": unit["name"],
            "level": unit["level"],
            "path": unit["path"],
            "children": [],
        }
        nodes[str(unit["unit_id"])] = node
        parent = nodes.get(str(unit.get("parent_id") or ""))
        (parent["children"] if parent is not None else roots).append(node)
    return roots
