"""Notify's pure rules: who hears about what, the templates, quiet hours, webhook signatures
and retries, and when reminders fall due on China's calendar (a controllable clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from cadre.events.calendar import WorkdayCalendar
from cadre.events.catalogue import EVENT_ADAPTER, AnyEvent
from cadre.events.envelope import new_event_id
from cadre.events.vocabulary import LeaderLevel
from cadre.notify.domain.kinds import Channel, Kind, notification_id
from cadre.notify.domain.preferences import Preferences, QuietHours, release_time
from cadre.notify.domain.reminders import (
    ReminderRules,
    approval_reminder_round,
    journal_reminder_day,
    task_reminder_day,
    task_reminder_due,
)
from cadre.notify.domain.routing import (
    Approvers,
    Candidate,
    Known,
    LeadersAbove,
    OrgDepartment,
    Person,
    UnitLeaders,
    approvers,
    nearest_leaders,
    routes,
)
from cadre.notify.domain.templates import email_text, render
from cadre.notify.domain.webhooks import RetryPolicy, sign, verify, wants

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkdayCalendar()
RULES = ReminderRules()


def event(
    event_type: str, data: dict[str, object], subject: str = "c1", actor: str = "c1"
) -> AnyEvent:
    return EVENT_ADAPTER.validate_python(
        {
            "id": new_event_id(),
            "type": event_type,
            "source": event_type.split(".")[0],
            "tenant": "t",
            "subject": subject,
            "unit_path": "/t/east",
            "occurred_at": datetime(2026, 11, 2, 9, tzinfo=UTC),
            "actor": actor,
            "data": data,
        }
    )


# ------------------------------------------------------------------ routing


def test_a_light_change_goes_to_the_cadre_their_leader_and_the_org_department() -> None:
    found = routes(
        event(
            "scoring.light_changed",
            {"previous": "green", "current": "red", "reasons": ["missed 3"], "as_of": "2026-11-02"},
        )
    )
    assert [(r.audience, r.kind) for r in found] == [
        (Person("c1"), Kind.LIGHT_CHANGED),
        (LeadersAbove("c1"), Kind.LIGHT_CHANGED_IN_UNIT),
        (OrgDepartment(exclude="c1"), Kind.LIGHT_CHANGED_IN_UNIT),
    ]
    assert found[0].params["reasons"] == ["missed 3"]


def test_a_ranking_goes_to_the_showcased_the_bottom_with_their_mentor_and_the_unit_leaders() -> (
    None
):
    found = routes(
        event(
            "scoring.ranking_published",
            {
                "unit_id": "east",
                "period": "2026-10",
                "generation": 1,
                "showcased": ["c2"],
                "bottom": [{"cadre_id": "c9", "mentor_id": "c2"}, {"cadre_id": "c8"}],
            },
            subject="east",
        )
    )
    assert [(r.audience, r.kind) for r in found] == [
        (Person("c2"), Kind.RANKING_SHOWCASED),
        (Person("c9"), Kind.RANKING_BOTTOM),
        (Person("c2"), Kind.RANKING_MENTOR),
        (Person("c8"), Kind.RANKING_BOTTOM),
        (UnitLeaders("east"), Kind.RANKING_PUBLISHED),
    ]
    assert found[1].params["mentor_id"] == "c2"


def test_a_leave_goes_step_by_step_to_the_next_approver_then_back_to_the_requester() -> None:
    requested = routes(
        event(
            "attendance.leave_requested",
            {
                "leave_id": "L1",
                "kind": "annual",
                "starts_on": "2026-11-09",
                "ends_on": "2026-11-13",
                "workdays": 5,
                "chain": [{"level": "township"}, {"level": "county"}],
            },
        )
    )
    assert [r.audience for r in requested] == [Approvers("c1", LeaderLevel.TOWNSHIP)]
    chain = Known(leave_chain=(LeaderLevel.TOWNSHIP, LeaderLevel.COUNTY))
    step = {"leave_id": "L1", "level": "township", "approver_id": "l1"}
    first = routes(event("attendance.leave_step_approved", {**step, "step": 0}), chain)
    assert [r.audience for r in first] == [Approvers("c1", LeaderLevel.COUNTY)]
    assert first[0].params["step"] == 1
    last = routes(event("attendance.leave_step_approved", {**step, "step": 1}), chain)
    assert last == []  # leave_approved follows and goes to the requester
    approved = routes(
        event(
            "attendance.leave_approved",
            {
                "leave_id": "L1",
                "kind": "annual",
                "starts_on": "2026-11-09",
                "ends_on": "2026-11-13",
                "workdays": 5,
            },
        )
    )
    assert [(r.audience, r.kind) for r in approved] == [(Person("c1"), Kind.LEAVE_APPROVED)]


def test_an_overdue_task_goes_to_the_assignee_and_the_assigner_a_reaction_with_its_reason() -> None:
    overdue = routes(
        event(
            "journal.task_overdue",
            {
                "task_id": "T1",
                "due_at": "2026-11-02T10:00:00+08:00",
                "penalty_points": 2,
                "dimension": "responsibility",
            },
        ),
        Known(task_assigner="boss", task_title="台账"),
    )
    assert [(r.audience, r.kind) for r in overdue] == [
        (Person("c1"), Kind.TASK_OVERDUE),
        (Person("boss"), Kind.TASK_OVERDUE_ASSIGNER),
    ]
    reacted = routes(
        event(
            "journal.entry_reacted",
            {
                "entry_id": "e1",
                "reaction": "dislike",
                "reason": "内容空泛",
                "reactor_level": "county",
            },
            actor="lead",
        )
    )
    assert reacted[0].audience == Person("c1")
    assert reacted[0].params["reason"] == "内容空泛"
    assert reacted[0].params["reactor_id"] == "lead"


def test_events_nobody_is_told_about_route_nowhere() -> None:
    assert (
        routes(
            event(
                "journal.peer_endorsed",
                {
                    "endorsement_id": "x",
                    "endorser_id": "c2",
                    "dimension": "politics",
                    "reason": "好",
                },
            )
        )
        == []
    )


LEADERS = [
    Candidate("county", "/t", LeaderLevel.COUNTY),
    Candidate("east-1", "/t/east", LeaderLevel.TOWNSHIP),
    Candidate("east-2", "/t/east", LeaderLevel.TOWNSHIP),
    Candidate("west", "/t/west", LeaderLevel.TOWNSHIP),
]


def test_the_nearest_leaders_are_those_of_the_deepest_unit_containing_the_cadre() -> None:
    assert nearest_leaders(LEADERS, "/t/east/v1", "c1") == ["east-1", "east-2"]
    assert nearest_leaders(LEADERS, "/t/east", "east-1") == ["east-2"]
    assert nearest_leaders(LEADERS[:1] + LEADERS[3:], "/t/east", "c1") == ["county"]


def test_approvers_are_every_leader_at_the_level_over_the_requester_but_the_requester() -> None:
    assert approvers(LEADERS, LeaderLevel.TOWNSHIP, "/t/east", "east-1") == ["east-2"]
    assert approvers(LEADERS, LeaderLevel.COUNTY, "/t/west", "c1") == ["county"]
    assert approvers(LEADERS, LeaderLevel.CITY, "/t/west", "c1") == []


def test_a_notification_id_is_fixed_by_its_cause_kind_and_recipient() -> None:
    a = notification_id("t", "event-1", Kind.LIGHT_CHANGED, "c1")
    assert a == notification_id("t", "event-1", Kind.LIGHT_CHANGED, "c1")
    assert a != notification_id("t", "event-1", Kind.LIGHT_CHANGED_IN_UNIT, "c1")
    assert a != notification_id("t", "event-1", Kind.LIGHT_CHANGED, "c2")


# ------------------------------------------------------------------ templates


def test_every_kind_renders_in_both_languages_without_leftover_placeholders() -> None:
    for kind in Kind:
        for language in ("zh-CN", "en"):
            rendered = render(kind, {}, language)
            assert rendered.title
            assert "{" not in rendered.title + rendered.body


def test_a_chinese_message_translates_vocabulary_and_the_email_adds_english_underneath() -> None:
    params = {
        "previous": "green",
        "current": "red",
        "reasons": ["缺记", "逾期"],
        "as_of": "2026-11-02",
    }
    assert render(Kind.LIGHT_CHANGED, params, "zh-CN").title == "您的预警灯变为红灯"
    assert "缺记、逾期" in render(Kind.LIGHT_CHANGED, params, "zh-CN").body
    mail = email_text(Kind.LIGHT_CHANGED, params, "zh-CN")
    assert mail.title == "您的预警灯变为红灯"
    assert "Your warning light is now red" in mail.body
    assert render(
        Kind.ENTRY_REACTED,
        {
            "reactor_id": "l1",
            "reactor_name": "王书记",
            "reaction": "like",
            "reason": "扎实",
            "entry_day": "2026-11-02",
        },
        "zh-CN",
    ).title == ("王书记点赞了您的工作日志")


# ------------------------------------------------------------------ preferences


def test_quiet_hours_spanning_midnight_hold_email_until_they_end() -> None:
    quiet = QuietHours(start=time(22), end=time(7))
    late = datetime(2026, 11, 2, 23, 30, tzinfo=SHANGHAI)
    assert release_time(late, quiet) == datetime(2026, 11, 3, 7, tzinfo=SHANGHAI)
    early = datetime(2026, 11, 3, 6, 0, tzinfo=SHANGHAI)
    assert release_time(early, quiet) == datetime(2026, 11, 3, 7, tzinfo=SHANGHAI)
    noon = datetime(2026, 11, 3, 12, tzinfo=SHANGHAI)
    assert release_time(noon, quiet) == noon
    assert release_time(late, None) == late


def test_channels_follow_the_choice_per_kind_and_the_inbox_is_always_kept() -> None:
    prefs = Preferences(email="a@example.org", channels={Kind.REMIND_JOURNAL: []})
    assert prefs.channels_for(Kind.REMIND_JOURNAL) == {Channel.INBOX}
    assert prefs.channels_for(Kind.LIGHT_CHANGED) == {Channel.INBOX, Channel.LIVE, Channel.EMAIL}
    assert Channel.EMAIL not in Preferences().channels_for(Kind.LIGHT_CHANGED)  # no address
    with pytest.raises(ValueError, match="differ"):
        QuietHours(start=time(8), end=time(8))


# ------------------------------------------------------------------ webhooks


def test_a_webhook_signature_verifies_only_with_the_secret_the_body_and_a_fresh_time() -> None:
    body = b'{"id": 1}'
    header = sign("s3cret", 1_800_000_000, body)
    assert verify("s3cret", header, body, now=1_800_000_010)
    assert not verify("other", header, body, now=1_800_000_010)
    assert not verify("s3cret", header, body + b" ", now=1_800_000_010)
    assert not verify("s3cret", header, body, now=1_800_000_000 + 3600)
    assert not verify("s3cret", "garbage", body, now=1_800_000_000)


def test_subscriptions_take_exact_types_a_source_wildcard_or_everything() -> None:
    assert wants(["scoring.light_changed"], "scoring.light_changed")
    assert wants(["journal.*"], "journal.task_overdue")
    assert not wants(["journal.*"], "scoring.light_changed")
    assert wants(["*"], "directory.unit_created")


def test_retries_back_off_exponentially_up_to_a_cap_then_give_up() -> None:
    policy = RetryPolicy(max_attempts=5, base=timedelta(seconds=10), cap=timedelta(seconds=60))
    assert [policy.delay_after(n) for n in range(1, 6)] == [
        timedelta(seconds=10),
        timedelta(seconds=20),
        timedelta(seconds=40),
        timedelta(seconds=60),
        None,
    ]


# ------------------------------------------------------------------ reminders (clock set here)


def at(day: str, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(date.fromisoformat(day), time(hour, minute), SHANGHAI)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (at("2026-09-30", 20), date(2026, 9, 30)),  # Wednesday before National Day
        (at("2026-09-30", 19, 59), None),  # not yet 20:00
        (at("2026-10-01", 20), None),  # National Day holiday
        (at("2026-10-05", 20), None),  # Monday inside the Golden Week: a holiday
        (at("2026-10-10", 20), date(2026, 10, 10)),  # adjusted working Saturday
        (at("2026-09-20", 21), date(2026, 9, 20)),  # adjusted working Sunday
        (at("2026-10-11", 20), None),  # an ordinary Sunday
        (at("2026-09-25", 20), None),  # Mid-Autumn Festival, a Friday
        (at("2026-10-12", 23, 59), date(2026, 10, 12)),  # a late tick still reminds
    ],
)
def test_the_journal_reminder_is_due_at_20_on_workdays_of_chinas_calendar(
    moment: datetime, expected: date | None
) -> None:
    assert journal_reminder_day(moment, CALENDAR, RULES) == expected


def test_a_tenant_override_turns_a_day_into_a_workday_or_a_day_off() -> None:
    calendar = WorkdayCalendar({date(2026, 10, 11): True, date(2026, 10, 12): False})
    assert journal_reminder_day(at("2026-10-11", 20), calendar, RULES) == date(2026, 10, 11)
    assert journal_reminder_day(at("2026-10-12", 20), calendar, RULES) is None


def test_a_waiting_approval_is_reminded_once_per_full_day_of_waiting() -> None:
    since = datetime(2026, 11, 2, 9, tzinfo=UTC)
    assert approval_reminder_round(since, since + timedelta(hours=23, minutes=59), RULES) is None
    assert approval_reminder_round(since, since + timedelta(hours=24), RULES) == 1
    assert approval_reminder_round(since, since + timedelta(hours=47), RULES) == 1
    assert approval_reminder_round(since, since + timedelta(hours=49), RULES) == 2


def test_a_task_is_reminded_on_the_last_workday_before_its_due_day() -> None:
    assert task_reminder_day(date(2026, 11, 5), CALENDAR) == date(2026, 11, 4)  # Thu ← Wed
    assert task_reminder_day(date(2026, 11, 9), CALENDAR) == date(2026, 11, 6)  # Mon ← Fri
    # Due the first workday after National Day: reminded on the Wednesday before it...
    assert task_reminder_day(date(2026, 10, 8), CALENDAR) == date(2026, 9, 30)
    # ...and due the Monday after the adjusted working Saturday: reminded that Saturday.
    assert task_reminder_day(date(2026, 10, 12), CALENDAR) == date(2026, 10, 10)
    due = at("2026-10-12", 10)
    assert not task_reminder_due(due, at("2026-10-10", 8, 59), CALENDAR, RULES)
    assert task_reminder_due(due, at("2026-10-10", 9), CALENDAR, RULES)
    assert task_reminder_due(due, at("2026-10-11", 15), CALENDAR, RULES)  # still before due
    assert not task_reminder_due(due, at("2026-10-12", 10), CALENDAR, RULES)
