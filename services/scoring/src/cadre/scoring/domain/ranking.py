"""Rankings inside a unit: order, the bottom share the light rules use, and the monthly
publication (showcase the top, pair the bottom with mentors). Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


def ranked(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    """Best first; ties by cadre id, so every instance and every replay agree."""
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def bottom_shares(scores: Mapping[str, float]) -> dict[str, float]:
    """For each cadre, the share of the unit (itself included) scoring at or below it."""
    values = sorted(scores.values())
    count = len(values)
    shares = {}
    for cadre, value in scores.items():
        at_or_below = sum(1 for v in values if v <= value)
        shares[cadre] = at_or_below / count
    return shares


@dataclass(frozen=True)
class Publication:
    showcased: tuple[str, ...]
    bottom: tuple[tuple[str, str | None], ...]  # (cadre, suggested mentor)


def publication(scores: Mapping[str, float], share: float = 0.10) -> Publication:
    """The top `share` of the unit to showcase and the bottom `share`, each bottom cadre
    with a mentor from the top performers, taken in turn. A unit of one publishes its
    member as top only; nobody is both."""
    order = [cadre for cadre, _ in ranked(scores)]
    if not order:
        return Publication((), ())
    size = max(1, math.ceil(len(order) * share))
    top = order[:size]
    bottom = [cadre for cadre in order[-size:] if cadre not in top]
    bottom.reverse()  # the lowest first
    mentors = [(cadre, top[i % len(top)]) for i, cadre in enumerate(bottom)]
    return Publication(tuple(top), tuple((c, m) for c, m in mentors))
