"""Day close: one status for each cadre and each past day, decided once. Pure."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from cadre.events.vocabulary import CheckInMode, DayStatus

ONE_DAY = timedelta(days=1)


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


@dataclass(frozen=True)
class Checked:
    """Days from `first` to `last` of one cadre, registered on `registered_on`, are known
    closed (or before the registration, so never to close). A closed day stays closed, so
    this holds until the cadre's registration day changes."""

    registered_on: date
    first: date
    last: date

    def covers(self, day: date) -> bool:
        return self.first <= day <= self.last


def days_to_check(
    registered_on: Mapping[str, date],
    first_day: date,
    last_day: date,
    checked: Mapping[str, Checked],
) -> list[tuple[str, date]]:
    """The cadre-days from `first_day` to `last_day` that may still be open, by day and
    then cadre: none before a cadre's registration, and none a previous pass checked under
    the same registration day."""
    width = (last_day - first_day).days + 1
    by_day: list[list[tuple[str, date]]] = [[] for _ in range(max(width, 0))]
    for cadre in sorted(registered_on):
        registered, known = registered_on[cadre], checked.get(cadre)
        if known is not None and known.registered_on != registered:
            known = None  # checked under another registration day: none of it holds
        day = max(first_day, registered)
        # A settled cadre is passed over whole: walking its window day by day every minute
        # was most of a pass that found nothing new (6 of 11 ms at 2,000 cadres).
        if known is not None and known.covers(day) and known.covers(last_day):
            continue
        while day <= last_day:
            if known is None or not known.covers(day):
                by_day[(day - first_day).days].append((cadre, day))
            day += ONE_DAY
    return [cadre_day for days in by_day for cadre_day in days]


def days_to_close(
    candidates: Iterable[tuple[str, date]], already_closed: Collection[tuple[str, date]]
) -> list[tuple[str, date]]:
    """The candidates still to close, in their order; closed ones are never closed again."""
    return [cadre_day for cadre_day in candidates if cadre_day not in already_closed]


def after_a_pass(
    previous: Checked | None, registered_on: date, first_day: date, last_day: date
) -> Checked:
    """What is known of a cadre once a pass closed every open day from `first_day` to
    `last_day`: that, joined to what was known before when the two meet."""
    if (
        previous is not None
        and previous.registered_on == registered_on
        and previous.first <= last_day + ONE_DAY
        and previous.last >= first_day - ONE_DAY
    ):
        return Checked(registered_on, min(previous.first, first_day), max(previous.last, last_day))
    return Checked(registered_on, first_day, last_day)


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
