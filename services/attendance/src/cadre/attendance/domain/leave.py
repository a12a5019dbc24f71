"""Leave: counting workdays, routing the approval chain by the tenant's rule table, and the
decisions along the chain. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from cadre.events.calendar import WorkdayCalendar
from cadre.events.units import covers
from cadre.events.vocabulary import HalfDay, LeaderLevel

LEVEL_ORDER = (LeaderLevel.TOWNSHIP, LeaderLevel.COUNTY, LeaderLevel.CITY)
MAX_LEAVE_DAYS = 366


class LeaveRuleError(ValueError):
    """The request or decision breaks a leave rule; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ChainRule:
    """Leave of up to `max_workdays` (None: any length) is approved by `levels`, in order."""

    max_workdays: float | None
    levels: tuple[LeaderLevel, ...]


DEFAULT_CHAIN_RULES: tuple[ChainRule, ...] = (
    ChainRule(1, (LeaderLevel.TOWNSHIP,)),
    ChainRule(3, (LeaderLevel.TOWNSHIP, LeaderLevel.COUNTY)),
    ChainRule(None, (LeaderLevel.TOWNSHIP, LeaderLevel.COUNTY, LeaderLevel.CITY)),
)


def route_chain(
    workdays: float,
    requester_level: LeaderLevel | None,
    rules: Sequence[ChainRule] = DEFAULT_CHAIN_RULES,
) -> tuple[LeaderLevel, ...]:
    """The approval levels for a leave, shaped by the requester's own level: nobody approves
    their own level's leave, so a leader's chain starts one level above them."""
    rule = next((r for r in rules if r.max_workdays is None or workdays <= r.max_workdays), None)
    if rule is None:
        raise LeaveRuleError("no-chain-rule", f"no approval rule covers {workdays} workdays")
    if requester_level is None:
        return rule.levels
    rank = LEVEL_ORDER.index(requester_level)
    above = tuple(level for level in rule.levels if LEVEL_ORDER.index(level) > rank)
    if above:
        return above
    # Even a short leave of a senior leader goes to the next level up (a city leader's to
    # the city level, decided by another city leader).
    return (LEVEL_ORDER[min(rank + 1, len(LEVEL_ORDER) - 1)],)


def leave_workdays(
    calendar: WorkdayCalendar,
    starts_on: date,
    ends_on: date,
    start_half: HalfDay | None = None,
    end_half: HalfDay | None = None,
) -> float:
    """Workdays taken: a leave starting in the afternoon or ending at noon takes half of
    that day. On a single day, `start_half` alone says which half is taken."""
    if ends_on < starts_on:
        raise LeaveRuleError("bad-dates", "the leave ends before it starts")
    if (ends_on - starts_on).days >= MAX_LEAVE_DAYS:
        # Longer absences (secondment, long illness) are personnel matters, not leave; the
        # cap also keeps a typo like year 3442 from walking centuries of calendar.
        raise LeaveRuleError(
            "leave-too-long", f"a leave spans at most {MAX_LEAVE_DAYS} calendar days"
        )
    days = float(calendar.count_workdays(starts_on, ends_on))
    if starts_on == ends_on:
        if calendar.is_workday(starts_on) and (start_half or end_half):
            return 0.5
        return days
    if start_half is HalfDay.AFTERNOON and calendar.is_workday(starts_on):
        days -= 0.5
    if end_half is HalfDay.MORNING and calendar.is_workday(ends_on):
        days -= 0.5
    return days


def overlaps(a: tuple[date, date], b: tuple[date, date]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def check_approver(
    chain: Sequence[LeaderLevel],
    step: int,
    approver_level: LeaderLevel | None,
    approver_unit_path: str,
    requester_unit_path: str,
    approver_id: str,
    requester_id: str,
) -> None:
    """Only a leader at the current step's level whose unit contains the requester decides."""
    if step >= len(chain):
        raise LeaveRuleError("already-decided", "this leave has no step waiting for a decision")
    if approver_id == requester_id:
        raise LeaveRuleError("own-leave", "nobody decides their own leave")
    if approver_level is not chain[step]:
        raise LeaveRuleError(
            "wrong-level", f"step {step + 1} is decided at {chain[step].value} level"
        )
    if not covers(approver_unit_path, requester_unit_path):
        raise LeaveRuleError("outside-unit", "the requester is not in a unit you lead")
