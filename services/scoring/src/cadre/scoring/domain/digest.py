"""A stable fingerprint of a projection: the same facts and ruleset always give the same
digest, whatever the arrival order, the number of instances or the replay. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from cadre.events.catalogue import AnyEvent
from cadre.scoring.domain.contributions import Contribution, contributions
from cadre.scoring.domain.facts import Fact, fold
from cadre.scoring.domain.ruleset import Ruleset


# The lines are built from text fields (ISO days, UUIDs in their canonical text), so a
# store can build or stream them from columns without rebuilding facts and contributions
# per row. A store that joins a contribution's leading fields itself ("|" after each, in
# this order) passes the joined text to `contribution_text_from_prefix`.
def fact_text(cadre_id: str, day: str, metric: str, event_id: str) -> str:
    return f"f|{cadre_id}|{day}|{metric}|{event_id}"


def contribution_text(
    cadre_id: str,
    day: str,
    dimension: str,
    rule: str,
    event_id: str,
    raw_points: float,
    points: float,
    voided: bool,
) -> str:
    return contribution_text_from_prefix(
        f"{cadre_id}|{day}|{dimension}|{rule}|{event_id}|", raw_points, points, voided
    )


def contribution_text_from_prefix(
    prefix: str, raw_points: float, points: float, voided: bool
) -> str:
    """`prefix`: cadre id, day, dimension, rule and event id, each followed by "|"."""
    return f"c|{prefix}{raw_points:.6f}|{points:.6f}|{int(voided)}"


def fact_line(fact: Fact) -> str:
    return fact_text(fact.cadre_id, fact.day.isoformat(), fact.metric.value, str(fact.event_id))


def contribution_line(item: Contribution) -> str:
    return contribution_text(
        item.cadre_id,
        item.day.isoformat(),
        item.dimension.value,
        item.rule,
        str(item.event_id),
        item.raw_points,
        item.points,
        item.voided,
    )


class DigestHasher:
    """Takes the digest lines in order (unique fact lines, then contribution lines), so a
    large projection can be streamed through it rather than held in memory."""

    def __init__(self) -> None:
        self._hasher = hashlib.sha256()

    def add_all(self, lines: Iterable[str]) -> None:
        """Each line, then a newline."""
        text = "\n".join(lines)
        if text:
            self._hasher.update(text.encode())
            self._hasher.update(b"\n")

    def add_terminated(self, data: bytes) -> None:
        """Lines already encoded, each followed by its newline (as `add_all` adds them)."""
        self._hasher.update(data)

    def hexdigest(self) -> str:
        return self._hasher.hexdigest()

    def copy(self) -> DigestHasher:
        """A hasher that goes on from what this one has taken so far."""
        copied = DigestHasher()
        copied._hasher = self._hasher.copy()
        return copied


def digest(facts: Iterable[Fact], contributions: Iterable[Contribution]) -> str:
    lines = sorted({fact_line(f) for f in facts}) + sorted(
        contribution_line(c) for c in contributions
    )
    hasher = DigestHasher()
    hasher.add_all(lines)
    return hasher.hexdigest()


def digest_of_events(events: Iterable[AnyEvent], ruleset: Ruleset) -> str:
    """The digest a projection of exactly these events must have under `ruleset`."""
    state = fold({}, events, ruleset.timezone)
    return digest(
        (fact for group in state.values() for fact in group), contributions(state, ruleset)
    )
