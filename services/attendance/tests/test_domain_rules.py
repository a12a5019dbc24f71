"""Attendance decisions: distance, geofences, spoofing, leave routing and counting, day close."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadre.attendance.domain.day_close import (
    Checked,
    after_a_pass,
    close_days,
    day_status,
    days_to_check,
    days_to_close,
)
from cadre.attendance.domain.geo import Fence, haversine_m, within_any
from cadre.attendance.domain.leave import (
    ChainRule,
    LeaveRuleError,
    check_approver,
    leave_workdays,
    overlaps,
    route_chain,
)
from cadre.attendance.domain.spoofing import Fix, SpoofPolicy, suspicions
from cadre.events.calendar import WorkdayCalendar
from cadre.events.vocabulary import CheckInMode, DayStatus, FlagReason, HalfDay, LeaderLevel

T, C, Y = LeaderLevel.TOWNSHIP, LeaderLevel.COUNTY, LeaderLevel.CITY


# ------------------------------------------------------------------ geo


def test_haversine_matches_known_distances() -> None:
    # Beijing Tiananmen to Shanghai People's Square: about 1,067 km.
    assert haversine_m(39.9087, 116.3975, 31.2304, 121.4737) == pytest.approx(1_067_000, rel=0.01)
    # One degree of latitude is about 111.2 km everywhere.
    assert haversine_m(25.0, 106.0, 26.0, 106.0) == pytest.approx(111_195, rel=0.001)
    assert haversine_m(25.0, 106.0, 25.0, 106.0) == 0


def test_geofence_edge_counts_as_inside() -> None:
    fence = Fence(25.0, 106.0, 300)
    north_299 = 25.0 + 299 / 111_195
    north_301 = 25.0 + 301 / 111_195
    assert within_any([fence], north_299, 106.0)
    assert not within_any([fence], north_301, 106.0)
    assert within_any([Fence(0, 0, 10), fence], 25.0, 106.0), "any of several fences"
    assert not within_any([], 25.0, 106.0)


# ------------------------------------------------------------------ spoofing

NOON = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_an_impossible_speed_is_flagged_either_side_in_time() -> None:
    here = Fix(NOON, 25.0, 106.0)
    far_soon_before = Fix(NOON - timedelta(minutes=10), 26.0, 106.0)  # 111 km in 10 minutes
    assert FlagReason.IMPOSSIBLE_SPEED in suspicions(
        here, 10, day=NOON.date(), neighbours=[far_soon_before]
    )
    a_day_earlier = Fix(NOON - timedelta(hours=24), 26.0, 106.0)
    assert suspicions(here, 10, day=NOON.date(), neighbours=[a_day_earlier]) == []


def test_gps_jitter_is_not_travel() -> None:
    jitter = Fix(NOON, 25.0 + 200 / 111_195, 106.0)  # 200 m in no time at all
    assert suspicions(Fix(NOON, 25.0, 106.0), 10, day=NOON.date(), neighbours=[jitter]) == []


def test_poor_accuracy_repeated_coordinates_and_mismatch_history_are_flagged() -> None:
    fix = Fix(NOON, 25.123456, 106.654321)
    reasons = suspicions(
        fix,
        500,
        day=NOON.date(),
        coordinates_on_other_days=[(25.123456, 106.654321, date(2026, 11, 19))],
        recent_device_mismatches=2,
    )
    assert reasons == [
        FlagReason.POOR_ACCURACY,
        FlagReason.REPEATED_COORDINATES,
        FlagReason.MISMATCH_HISTORY,
    ]
    same_day = suspicions(
        fix, 10, day=NOON.date(), coordinates_on_other_days=[(25.123456, 106.654321, NOON.date())]
    )
    assert same_day == [], "repeating a place on the same day is normal"
    assert suspicions(fix, 150, day=NOON.date(), policy=SpoofPolicy(max_accuracy_m=100)) == [
        FlagReason.POOR_ACCURACY
    ]


def test_repeated_coordinates_are_judged_by_the_local_day_not_the_utc_date() -> None:
    """01:30 in Guizhou on 21 November is 17:30 UTC on the 20th: the same spot earlier that
    local day is a repeat on the same day, the same spot on the 20th local is another day."""
    fix = Fix(datetime(2026, 11, 20, 17, 30, tzinfo=UTC), 25.123456, 106.654321)
    local_day = date(2026, 11, 21)
    earlier_today = [(25.123456, 106.654321, local_day)]
    assert suspicions(fix, 10, day=local_day, coordinates_on_other_days=earlier_today) == []
    yesterday = [(25.123456, 106.654321, date(2026, 11, 20))]
    assert suspicions(fix, 10, day=local_day, coordinates_on_other_days=yesterday) == [
        FlagReason.REPEATED_COORDINATES
    ]


# ------------------------------------------------------------------ leave


@pytest.mark.parametrize(
    ("workdays", "requester", "chain"),
    [
        (0.5, None, (T,)),
        (1, None, (T,)),
        (1.5, None, (T, C)),
        (3, None, (T, C)),
        (10, None, (T, C, Y)),
        (1, T, (C,)),  # a township leader's short leave goes up a level
        (5, T, (C, Y)),
        (5, C, (Y,)),
        (1, Y, (Y,)),  # the top level is decided by a peer at that level
    ],
)
def test_chain_routing_by_table_and_requester_level(
    workdays: float, requester: LeaderLevel | None, chain: tuple[LeaderLevel, ...]
) -> None:
    assert route_chain(workdays, requester) == chain


def test_a_tenant_table_replaces_the_default() -> None:
    rules = (ChainRule(2, (C,)), ChainRule(None, (C, Y)))
    assert route_chain(2, None, rules) == (C,)
    assert route_chain(7, None, rules) == (C, Y)
    with pytest.raises(LeaveRuleError):
        route_chain(9, None, (ChainRule(5, (T,)),))


def test_leave_workdays_skip_the_national_day_holiday_and_count_adjusted_weekends() -> None:
    calendar = WorkdayCalendar()
    # 28 Sep - 11 Oct 2026: 28-30 Sep, 8-9 Oct and the working Saturday 10 Oct.
    assert leave_workdays(calendar, date(2026, 9, 28), date(2026, 10, 11)) == 6
    assert leave_workdays(calendar, date(2026, 10, 1), date(2026, 10, 7)) == 0
    assert leave_workdays(calendar, date(2026, 10, 10), date(2026, 10, 10)) == 1


def test_half_days() -> None:
    calendar = WorkdayCalendar()
    monday, wednesday = date(2026, 11, 23), date(2026, 11, 25)
    assert leave_workdays(calendar, monday, monday, HalfDay.AFTERNOON) == 0.5
    assert leave_workdays(calendar, monday, wednesday, HalfDay.AFTERNOON, HalfDay.MORNING) == 2
    with pytest.raises(LeaveRuleError):
        leave_workdays(calendar, wednesday, monday)


def test_overlap() -> None:
    assert overlaps((date(2026, 1, 1), date(2026, 1, 5)), (date(2026, 1, 5), date(2026, 1, 9)))
    assert not overlaps((date(2026, 1, 1), date(2026, 1, 4)), (date(2026, 1, 5), date(2026, 1, 9)))


def test_only_a_leader_of_the_step_level_over_the_requester_decides() -> None:
    chain = (T, C)
    ok = {
        "approver_unit_path": "/demo/wangmo/leye",
        "requester_unit_path": "/demo/wangmo/leye/v1",
        "approver_id": "l1",
        "requester_id": "c1",
    }
    check_approver(chain, 0, T, **ok)
    for level, changes, code in [
        (C, {}, "wrong-level"),
        (T, {"approver_unit_path": "/demo/wangmo/pingle"}, "outside-unit"),
        (T, {"approver_id": "c1"}, "own-leave"),
    ]:
        with pytest.raises(LeaveRuleError) as raised:
            check_approver(chain, 0, level, **{**ok, **changes})
        assert raised.value.code == code
    with pytest.raises(LeaveRuleError, match="no step"):
        check_approver(chain, 2, C, **ok)


# ------------------------------------------------------------------ day close


def test_day_status_precedence() -> None:
    assert day_status(True, {CheckInMode.NORMAL}, on_leave=True) is DayStatus.PRESENT
    assert day_status(True, {CheckInMode.LEAVE}, on_leave=True) is DayStatus.ON_LEAVE
    assert day_status(False, {CheckInMode.VILLAGE_VISIT}, on_leave=False) is DayStatus.PRESENT
    assert day_status(False, set(), on_leave=False) is DayStatus.HOLIDAY
    assert day_status(True, set(), on_leave=False) is DayStatus.ABSENT


cadre_ids = st.sampled_from(["c1", "c2", "c3"])
days = st.dates(min_value=date(2026, 9, 25), max_value=date(2026, 10, 12))
modes = st.sampled_from(list(CheckInMode))


@given(
    check_ins=st.lists(st.tuples(cadre_ids, days, modes), max_size=40),
    leaves=st.lists(st.tuples(cadre_ids, days), max_size=15),
    closed_first=st.sets(st.tuples(cadre_ids, days), max_size=10),
)
def test_every_cadre_day_gets_exactly_one_status_and_closing_again_emits_nothing(
    check_ins: list[tuple[str, date, CheckInMode]],
    leaves: list[tuple[str, date]],
    closed_first: set[tuple[str, date]],
) -> None:
    calendar = WorkdayCalendar()
    all_days = [date(2026, 9, 25) + timedelta(days=n) for n in range(18)]
    workday = {d: calendar.is_workday(d) for d in all_days}
    seen: dict[tuple[str, date], set[CheckInMode]] = {}
    for cadre, day, mode in check_ins:
        seen.setdefault((cadre, day), set()).add(mode)

    registered = dict.fromkeys(("c1", "c2", "c3"), all_days[0])
    candidates = days_to_check(registered, all_days[0], all_days[-1], {})
    pending = days_to_close(candidates, closed_first)
    statuses = close_days(pending, workday, seen, set(leaves))
    assert set(statuses) | closed_first == {(c, d) for c in ("c1", "c2", "c3") for d in all_days}
    assert not set(statuses) & closed_first, "an already closed day is never closed again"
    assert len(pending) == len(set(pending)) == len(statuses)
    again = days_to_close(candidates, closed_first | set(statuses))
    assert again == []


def test_no_day_before_the_registration_is_a_candidate() -> None:
    monday = date(2026, 11, 16)
    registered = {"old": monday - timedelta(days=30), "new": monday + timedelta(days=1)}
    candidates = days_to_check(registered, monday, monday + timedelta(days=2), {})
    assert candidates == [
        ("old", monday),
        ("new", monday + timedelta(days=1)),
        ("old", monday + timedelta(days=1)),
        ("new", monday + timedelta(days=2)),
        ("old", monday + timedelta(days=2)),
    ]


def test_after_a_pass_only_new_days_new_cadres_and_changed_registrations_are_candidates() -> None:
    monday, registered_on = date(2026, 11, 16), date(2026, 1, 5)
    sunday = monday + timedelta(days=6)
    people = {"a": registered_on, "b": registered_on}
    checked = {c: after_a_pass(None, r, monday, sunday) for c, r in people.items()}
    assert days_to_check(people, monday, sunday, checked) == []
    # The next day's pass: its window has moved on by a day, and only that day is new.
    next_monday = sunday + timedelta(days=1)
    window = (monday + timedelta(days=1), next_monday)
    assert days_to_check(people, *window, checked) == [("a", next_monday), ("b", next_monday)]
    # A newcomer, and a cadre whose registration moved: all of their window.
    moved = people | {"b": registered_on - timedelta(days=1), "c": registered_on}
    candidates = days_to_check(moved, *window, checked)
    assert {c for c, _ in candidates} == {"a", "b", "c"}
    assert [d for c, d in candidates if c == "b"] == [d for c, d in candidates if c == "c"]
    assert len([d for c, d in candidates if c == "c"]) == 7
    # A window moved back (a clock set back): the days before the checked ones are new.
    earlier = (monday - timedelta(days=2), sunday - timedelta(days=2))
    assert days_to_check(people, *earlier, checked) == [
        (c, d) for d in (monday - timedelta(days=2), monday - timedelta(days=1)) for c in "ab"
    ]


def test_what_two_passes_checked_joins_when_their_windows_meet() -> None:
    day, registered_on = date(2026, 11, 16), date(2026, 1, 5)
    week = after_a_pass(None, registered_on, day, day + timedelta(days=6))
    assert after_a_pass(week, registered_on, day + timedelta(days=7), day + timedelta(days=9)) == (
        Checked(registered_on, day, day + timedelta(days=9))
    )
    apart = after_a_pass(week, registered_on, day + timedelta(days=8), day + timedelta(days=9))
    assert apart == Checked(registered_on, day + timedelta(days=8), day + timedelta(days=9))
    moved = after_a_pass(week, registered_on - timedelta(days=1), day, day)
    assert moved == Checked(registered_on - timedelta(days=1), day, day)


def test_a_tenant_table_comes_from_settings_and_others_keep_the_default() -> None:
    from cadre.attendance.settings import AttendanceSettings

    settings = AttendanceSettings.model_validate(
        {
            "leave_chain_rules": {
                "gz": [{"max_workdays": 2, "levels": ["county"]}, {"levels": ["county", "city"]}]
            }
        }
    )
    assert route_chain(2, None, settings.chain_rules("gz")) == (C,)
    assert route_chain(6, None, settings.chain_rules("gz")) == (C, Y)
    assert route_chain(6, None, settings.chain_rules("demo")) == (T, C, Y)


def test_a_leave_spans_at_most_a_year() -> None:
    calendar = WorkdayCalendar()
    assert leave_workdays(calendar, date(2026, 1, 1), date(2026, 12, 31)) > 240
    with pytest.raises(LeaveRuleError) as error:
        leave_workdays(calendar, date(1970, 1, 1), date(3442, 1, 1))
    assert error.value.code == "leave-too-long"
