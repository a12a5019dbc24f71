"""Day close: one status for each cadre and each past day, decided once. Pure."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import date

from cadre.events.vocabulary import CheckInMode, DayStatus


def day_status(workday: bool, modes: Collection[CheckInMode], on_leave: bool) -> DayStatus:
    """Being there wins (a half-day leave with a check-in is presence, and so is a stationed
    cadre's weekend in the village); then approved leave; then a day off; else absent. A
    `leave` check-in is not presence."""
    if any(mode is not CheckInMode.LEAVE for mode in modes):
        return DayStatus.PRESENT
    if on_leave:
        return DayStatus.ON_LEAVE
    if not workday:
        return DayStatus.HOLIDAY
    return DayStatus.ABSENT


def days_to_close(
    cadres: Iterable[str],
    days: Iterable[date],
    already_closed: Collection[tuple[str, date]],
) -> list[tuple[str, date]]:
    """The cadre-days still to close, in a stable order; closed ones are never closed again."""
    return [
        (c, d)
        for d in sorted(set(days))
        for c in sorted(set(cadres))
        if (c, d) not in already_closed
    ]


def close_days(
    pending: Iterable[tuple[str, date]],
    is_workday: Mapping[date, bool],
    modes_seen: Mapping[tuple[str, date], Collection[CheckInMode]],
    leave_days: Collection[tuple[str, date]],
) -> dict[tuple[str, date], DayStatus]:
    return {
        (cadre, day): day_status(
            is_workday[day], modes_seen.get((cadre, day), ()), (cadre, day) in leave_days
        )
        for cadre, day in pending
    }
