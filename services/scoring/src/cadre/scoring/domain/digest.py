"""A stable fingerprint of a projection: the same facts and ruleset always give the same
digest, whatever the arrival order, the number of instances or the replay. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from cadre.events.catalogue import AnyEvent
from cadre.scoring.domain.contributions import Contribution, contributions
from cadre.scoring.domain.facts import Fact, fold
from cadre.scoring.domain.ruleset import Ruleset


def fact_line(fact: Fact) -> str:
    return f"f|{fact.cadre_id}|{fact.day.isoformat()}|{fact.metric.value}|{fact.event_id}"


def contribution_line(item: Contribution) -> str:
    return (
        f"c|{item.cadre_id}|{item.day.isoformat()}|{item.dimension.value}|{item.rule}|"
        f"{item.event_id}|{item.raw_points:.6f}|{item.points:.6f}|{int(item.voided)}"
    )


class DigestHasher:
    """Takes the digest lines in order (unique fact lines, then contribution lines), so a
    large projection can be streamed through it rather than held in memory."""

    def __init__(self) -> None:
        self._hasher = hashlib.sha256()

    def add(self, line: str) -> None:
        self._hasher.update(line.encode())
        self._hasher.update(b"\n")

    def hexdigest(self) -> str:
        return self._hasher.hexdigest()


def digest(facts: Iterable[Fact], contributions: Iterable[Contribution]) -> str:
    lines = sorted({fact_line(f) for f in facts}) + sorted(
        contribution_line(c) for c in contributions
    )
    hasher = DigestHasher()
    for line in lines:
        hasher.add(line)
    return hasher.hexdigest()


def digest_of_events(events: Iterable[AnyEvent], ruleset: Ruleset) -> str:
    """The digest a projection of exactly these events must have under `ruleset`."""
    state = fold({}, events, ruleset.timezone)
    return digest(
        (fact for group in state.values() for fact in group), contributions(state, ruleset)
    )
