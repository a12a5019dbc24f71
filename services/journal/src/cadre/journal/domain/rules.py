"""Who may do what in the journal, and the rules of entries, endorsements and study. Each
check raises `Refused` with an HTTP status and a machine-readable code. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from cadre.events.auth import Principal
from cadre.events.units import covers
from cadre.events.vocabulary import ADMIN_ROLES, READ_ALL_ROLES, Dimension, LeaderLevel, Role

# The tags the platform knows, and the dimension an entry with the tag belongs to. Free
# tags are allowed too; they give the entry no dimension.
KNOWN_TAGS: dict[str, Dimension | None] = {
    "ideological_report": Dimension.POLITICS,
    "study_notes": Dimension.LEARNING,
    "publicity": Dimension.COMMUNICATION,
    "coordination_success": Dimension.COMMUNICATION,
    "resource_matching": None,
}
TAG_PATTERN = re.compile(r"^[\w\u4e00-\u9fff-]{1,20}$")
MAX_TAGS = 10
MAX_BACKDATE_DAYS = 7  # the most a tenant may allow; feeds rely on it as a bound
ALL_LEVELS = frozenset(LeaderLevel)


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def can_read_all(principal: Principal) -> bool:
    return principal.has_any(*READ_ALL_ROLES)


def may_view(principal: Principal, author_id: str, author_unit_path: str) -> bool:
    """A cadre sees their own entries, a leader their subtree's, the org department all."""
    if principal.sub == author_id or can_read_all(principal):
        return True
    return principal.has_any(Role.LEADER) and covers(principal.unit_path, author_unit_path)


def check_tags(tags: Sequence[str]) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(tag.strip() for tag in tags if tag.strip()))
    if len(cleaned) > MAX_TAGS:
        raise Refused(422, "too-many-tags", f"An entry has at most {MAX_TAGS} tags.")
    bad = [tag for tag in cleaned if not TAG_PATTERN.match(tag)]
    if bad:
        raise Refused(
            422,
            "bad-tag",
            f"Tags are 1-20 letters, digits, '_' or '-' without spaces: {', '.join(bad)}.",
        )
    return cleaned


def entry_dimension(tags: Iterable[str]) -> Dimension | None:
    """The dimension of an entry: that of its first known tag with one (None: untagged,
    which scoring counts as responsibility)."""
    for tag in tags:
        dimension = KNOWN_TAGS.get(tag)
        if dimension is not None:
            return dimension
    return None


def check_entry_day(day: date, today: date, backdate_days: int, missed: bool) -> None:
    """An entry is for today, or (a late sync from the phone) up to `backdate_days` back,
    and never for a day already recorded as missed."""
    if day > today:
        raise Refused(422, "entry-in-future", f"An entry cannot be for {day}, after today.")
    if day < today - timedelta(days=backdate_days):
        raise Refused(
            422,
            "entry-too-old",
            f"Entries can be written for today and the {backdate_days} day(s) before.",
        )
    if missed:
        raise Refused(
            409, "day-already-missed", f"{day} was closed without a journal; it is recorded."
        )


def check_edit(principal: Principal, author_id: str, day: date, today: date, days: int) -> None:
    if principal.sub != author_id:
        raise Refused(403, "not-your-entry", "Only the author edits an entry.")
    if day < today - timedelta(days=days):
        raise Refused(
            409, "entry-locked", f"Entries can be edited for {days} day(s) after their day."
        )


def check_reaction(
    reactor: Principal,
    author_id: str,
    author_unit_path: str,
    allowed_levels: frozenset[LeaderLevel] = ALL_LEVELS,
) -> LeaderLevel:
    """A like or dislike comes from a leader whose unit contains the author's, at a level
    the tenant allows, and never from the author. Returns the reactor's level."""
    if reactor.sub == author_id:
        raise Refused(403, "self-reaction", "Nobody reacts to their own entry.")
    if not reactor.has_any(Role.LEADER) or reactor.level is None:
        raise Refused(403, "not-a-leader", "Only leaders like or dislike entries.")
    if reactor.level not in allowed_levels:
        raise Refused(
            403,
            "level-not-allowed",
            f"Leaders of level {reactor.level.value} do not react to entries in this tenant.",
        )
    if not covers(reactor.unit_path, author_unit_path):
        raise Refused(
            403, "outside-unit", "The author is not in a unit you lead; you cannot react."
        )
    return reactor.level


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def check_endorsement(
    endorser: Principal, endorser_unit_id: str | None, target_id: str, target_unit_id: str | None
) -> None:
    if endorser.sub == target_id:
        raise Refused(422, "self-endorsement", "Nobody endorses themself.")
    if target_unit_id is None:
        raise Refused(404, "cadre-not-found", f"No active cadre {target_id!r}.")
    if endorser_unit_id != target_unit_id:
        raise Refused(403, "not-same-unit", "Endorsements are between colleagues of the same unit.")


@dataclass(frozen=True)
class PastEndorsement:
    endorser_id: str
    target_id: str
    day: date


def is_reciprocal(
    endorser_id: str,
    target_id: str,
    today: date,
    history: Iterable[PastEndorsement],
    window_days: int = 56,
    min_each_way: int = 2,
) -> bool:
    """A repeated reciprocal pair: within the window (counting this endorsement), each has
    endorsed the other at least `min_each_way` times. Scoring rules may discount these."""
    since = today - timedelta(days=window_days)
    recent = [h for h in history if h.day > since]
    forward = 1 + sum(1 for h in recent if (h.endorser_id, h.target_id) == (endorser_id, target_id))
    back = sum(1 for h in recent if (h.endorser_id, h.target_id) == (target_id, endorser_id))
    return forward >= min_each_way and back >= min_each_way


def check_assigner(principal: Principal, target_path: str) -> None:
    """Leaders assign tasks and study within their subtree; org-department admins anywhere."""
    if principal.has_any(*ADMIN_ROLES):
        return
    if not principal.has_any(Role.LEADER):
        raise Refused(403, "not-a-leader", "Only leaders and admins assign work.")
    if not covers(principal.unit_path, target_path):
        raise Refused(403, "outside-unit", "You can only assign work inside the units you lead.")


def check_task_owner(principal: Principal, assigner_id: str, task_path: str) -> None:
    """Grading, reopening and cancelling belong to the assigner (or an admin, or a leader
    above the task's unit who could have assigned it)."""
    if principal.sub == assigner_id or principal.has_any(*ADMIN_ROLES):
        return
    check_assigner(principal, task_path)


def study_shortfall(required: int, completed: int) -> int:
    return max(0, required - completed)
