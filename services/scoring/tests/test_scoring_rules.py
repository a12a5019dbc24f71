"""Scoring rules: rulesets load or fail clearly; folding is commutative and idempotent;
caps hold; every point is explained by its event and rule."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadre.events.catalogue import AnyEvent, CheckedIn, DayClosed
from cadre.events.samples import SAMPLE_DATA, all_samples, sample_event
from cadre.events.vocabulary import CheckInMode, DayStatus, Dimension
from cadre.events.wire import encode
from cadre.scoring.domain.contributions import contributions, explain, radar
from cadre.scoring.domain.digest import digest_of_events
from cadre.scoring.domain.facts import FOLDED_TYPES, facts_of, fold, may_yield_facts
from cadre.scoring.domain.ruleset import RulesetError, default_ruleset, load_ruleset, parse_ruleset

RULES = default_ruleset()
NOV = (date(2026, 11, 1), date(2026, 11, 30))


def event(
    event_type: str,
    cadre: str = "c1",
    at: datetime | None = None,
    actor: str | None = None,
    **data: Any,
) -> AnyEvent:
    when = at or datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
    return sample_event(
        event_type,
        subject=cadre,
        occurred_at=when,
        actor=actor or cadre,
        data={**SAMPLE_DATA[event_type], **data},
    )


def score(events: list[AnyEvent], cadre: str = "c1") -> dict[Dimension, float]:
    return radar(contributions(fold({}, events), RULES), cadre, *NOV, RULES).dimensions


# ------------------------------------------------------------------ rulesets


def test_the_default_ruleset_carries_the_issue_table() -> None:
    assert RULES.points.day_absent == -3
    assert RULES.points.tags["publicity"].points == 3
    assert RULES.points.endorsement_cap_per_half_year == 20
    assert sum(RULES.weights.values()) == pytest.approx(1.0)
    assert [RULES.stars_for(p) for p in (95, 90, 75, 50, 20, 5)] == [5, 5, 4, 3, 2, 1]


def test_a_broken_ruleset_names_the_file_and_the_key_or_line(tmp_path: Path) -> None:
    bad_value = tmp_path / "gz.toml"
    bad_value.write_text('version = "1"\n[points]\nday_absent = "very"\n', encoding="utf-8")
    with pytest.raises(
        RulesetError, match=r"gz\.toml: key points\.day_absent: Input should be a valid number"
    ):
        load_ruleset(bad_value)
    with pytest.raises(RulesetError, match=r"x\.toml: not valid TOML: .*line 2"):
        parse_ruleset('version = "1"\nweights = = 1\n', "x.toml")
    with pytest.raises(RulesetError, match=r"key weights: .*missing: discipline"):
        parse_ruleset('version = "1"\n[weights]\npolitics = 1\n', "w.toml")
    with pytest.raises(RulesetError, match=r"key points\.surprise: Extra inputs"):
        parse_ruleset('version = "1"\n[points]\nsurprise = 1\n', "s.toml")
    with pytest.raises(RulesetError, match="cannot read"):
        load_ruleset(tmp_path / "missing.toml")


# ------------------------------------------------------------------ the rule table


def test_attendance_rules() -> None:
    present = event("attendance.day_closed", day="2026-11-19", status="present", workday=True)
    absent = event("attendance.day_closed", day="2026-11-18", status="absent", workday=True)
    holiday = event("attendance.day_closed", day="2026-11-15", status="holiday", workday=False)
    flagged = event("attendance.check_in_flagged")
    branch = event("attendance.checked_in", mode="meeting", branch_activity=True)
    plain_meeting = event("attendance.checked_in", mode="meeting", branch_activity=False)
    scores = score([present, absent, holiday, flagged, branch, plain_meeting])
    assert scores[Dimension.DISCIPLINE] == 1 - 3 - 2
    assert scores[Dimension.POLITICS] == 2


def test_journal_rules_first_entry_tags_and_reactions() -> None:
    morning = event("journal.entry_posted", entry_id="e1", day="2026-11-20", tags=["publicity"])
    later = event(
        "journal.entry_posted",
        entry_id="e2",
        day="2026-11-20",
        tags=["study_notes", "free tag"],
        at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
    )
    like = event(
        "journal.entry_reacted",
        entry_id="e1",
        reaction="like",
        reactor_level="county",
        dimension="communication",
        actor="leader-a",
    )
    dislike = event(
        "journal.entry_reacted",
        entry_id="e2",
        reaction="dislike",
        reactor_level="township",
        dimension=None,
        actor="leader-b",
    )
    missed = event("journal.journal_missed", day="2026-11-19")
    scores = score([morning, later, like, dislike, missed])
    assert scores[Dimension.RESPONSIBILITY] == 1 - 1  # one first entry; untagged dislike
    assert scores[Dimension.COMMUNICATION] == 3 + 2
    assert scores[Dimension.LEARNING] == 2
    assert scores[Dimension.DISCIPLINE] == -2


def test_the_latest_reaction_of_a_leader_counts_and_a_retraction_removes_it() -> None:
    first = datetime(2026, 11, 20, 3, tzinfo=UTC)
    like = event(
        "journal.entry_reacted",
        entry_id="e1",
        reaction="like",
        reactor_level="city",
        dimension="politics",
        actor="L",
        at=first,
    )
    changed = event(
        "journal.entry_reacted",
        entry_id="e1",
        reaction="dislike",
        reactor_level="city",
        dimension="politics",
        actor="L",
        at=first + timedelta(hours=1),
    )
    retracted = event(
        "journal.reaction_retracted",
        entry_id="e1",
        reaction="dislike",
        reactor_level="city",
        actor="L",
        at=first + timedelta(hours=2),
    )
    assert score([like])[Dimension.POLITICS] == 3
    assert score([changed, like])[Dimension.POLITICS] == -3
    assert score([retracted, like, changed])[Dimension.POLITICS] == 0


def test_tasks_and_study() -> None:
    done = event(
        "journal.task_completed", task_id="t1", dimension="responsibility", reward_points=10
    )
    graded = event("journal.task_graded", task_id="t1", quality_pct=80)
    ungraded = event("journal.task_completed", task_id="t2", dimension="learning", reward_points=4)
    overdue = event(
        "journal.task_overdue", task_id="t3", dimension="responsibility", penalty_points=3
    )
    theory = event("journal.study_completed", study_id="s1", party_theory=True)
    other = event("journal.study_completed", study_id="s2", party_theory=False)
    scores = score([done, graded, ungraded, overdue, theory, other])
    assert scores[Dimension.RESPONSIBILITY] == pytest.approx(10 * 0.8 - 3)
    assert scores[Dimension.LEARNING] == 4 + 2
    assert scores[Dimension.POLITICS] == 2


def test_a_reopened_task_earns_only_when_completed_again_and_a_cancelled_one_earns_nothing() -> (
    None
):
    def at(hour: int) -> datetime:
        return datetime(2026, 11, 20, hour, tzinfo=UTC)

    def task(event_type: str, hour: int, **data: Any) -> AnyEvent:
        return event(f"journal.{event_type}", task_id="t1", at=at(hour), **data)

    done = task("task_completed", 1, dimension="responsibility", reward_points=10)
    graded = task("task_graded", 2, quality_pct=50)
    reopened = task("task_reopened", 3)
    again = task("task_completed", 4, dimension="responsibility", reward_points=10)
    assert score([done, graded])[Dimension.RESPONSIBILITY] == 5
    assert score([done, graded, reopened])[Dimension.RESPONSIBILITY] == 0
    # the grade was for the first completion; the new one is ungraded until graded again
    assert score([done, graded, reopened, again])[Dimension.RESPONSIBILITY] == 10
    overdue = task("task_overdue", 0, dimension="responsibility", penalty_points=3)
    cancelled = task("task_cancelled", 5)
    assert score([overdue])[Dimension.RESPONSIBILITY] == -3
    assert score([overdue, cancelled, done])[Dimension.RESPONSIBILITY] == 0


def test_endorsements_are_capped_at_20_per_half_year_per_dimension() -> None:
    endorsements = [
        event(
            "journal.peer_endorsed",
            endorsement_id=f"x{i}",
            dimension="communication",
            at=datetime(2026, 7, 1, tzinfo=UTC) + timedelta(days=i % 150, minutes=i),
        )
        for i in range(30)
    ]
    items = contributions(fold({}, endorsements), RULES)
    assert sum(i.points for i in items) == 20
    assert sum(i.raw_points for i in items) == 30
    assert sum(i.cap_effect for i in items) == -10, "explain shows what the cap removed"
    next_half = event(
        "journal.peer_endorsed",
        endorsement_id="y",
        dimension="communication",
        at=datetime(2027, 1, 5, tzinfo=UTC),
    )
    assert sum(i.points for i in contributions(fold({}, [*endorsements, next_half]), RULES)) == 21


def test_a_voided_contribution_drops_out_but_stays_explained() -> None:
    absent = event("attendance.day_closed", day="2026-11-18", status="absent", workday=True)
    void = event(
        "scoring.contribution_voided",
        voided_event_id=str(absent.id),
        reason="appeal upheld",
        voided_by="orgadmin",
    )
    assert score([absent, void])[Dimension.DISCIPLINE] == 0
    [shown] = explain(
        contributions(fold({}, [absent, void]), RULES), "c1", *NOV, Dimension.DISCIPLINE
    )
    assert shown.voided
    assert shown.raw_points == -3
    assert shown.points == 0


def test_a_late_synced_event_lands_on_its_own_day() -> None:
    late = event(
        "attendance.day_closed",
        day="2026-10-30",
        status="absent",
        workday=True,
        at=datetime(2026, 11, 20, tzinfo=UTC),
    )
    items = contributions(fold({}, [late]), RULES)
    assert (
        radar(items, "c1", date(2026, 10, 1), date(2026, 10, 31), RULES).dimensions[
            Dimension.DISCIPLINE
        ]
        == -3
    )
    assert radar(items, "c1", *NOV, RULES).dimensions[Dimension.DISCIPLINE] == 0


# ------------------------------------------------------------------ properties


def _universe() -> list[AnyEvent]:
    base = datetime(2026, 11, 2, tzinfo=UTC)
    events: list[AnyEvent] = []
    for n in range(40):
        cadre = f"c{n % 3}"
        at = base + timedelta(hours=7 * n)
        kind = n % 8
        if kind == 0:
            events.append(
                event(
                    "attendance.day_closed",
                    cadre,
                    at,
                    day=at.date().isoformat(),
                    status=random.Random(n).choice(["present", "absent"]),
                    workday=True,
                )
            )
        elif kind == 1:
            events.append(
                event(
                    "journal.entry_posted",
                    cadre,
                    at,
                    entry_id=f"e{n // 2}",
                    day=at.date().isoformat(),
                    tags=["publicity"] if n % 3 else [],
                )
            )
        elif kind == 2:
            events.append(
                event(
                    "journal.entry_reacted",
                    cadre,
                    at,
                    entry_id=f"e{n // 4}",
                    reaction="like" if n % 5 else "dislike",
                    reactor_level="county",
                    dimension=None,
                    actor=f"L{n % 2}",
                )
            )
        elif kind == 3:
            events.append(
                event(
                    "journal.peer_endorsed", cadre, at, endorsement_id=f"p{n}", dimension="learning"
                )
            )
        elif kind == 4:
            events.append(
                event(
                    "journal.task_completed",
                    cadre,
                    at,
                    task_id=f"t{n % 5}",
                    dimension="responsibility",
                    reward_points=5,
                )
            )
        elif kind == 5:
            events.append(
                event("journal.task_graded", cadre, at, task_id=f"t{n % 5}", quality_pct=50 + n)
            )
        elif kind == 6:
            events.append(event("attendance.check_in_flagged", cadre, at))
        else:
            events.append(
                event(
                    "journal.reaction_retracted",
                    cadre,
                    at,
                    entry_id=f"e{n // 4}",
                    reaction="like",
                    reactor_level="county",
                    actor=f"L{n % 2}",
                )
            )
    return events


UNIVERSE = _universe()


@settings(max_examples=60, deadline=None)
@given(
    picks=st.lists(st.integers(0, len(UNIVERSE) - 1), min_size=1, max_size=60), seed=st.integers()
)
def test_any_order_and_any_duplicates_give_the_same_contributions_and_digest(
    picks: list[int], seed: int
) -> None:
    chosen = [UNIVERSE[i] for i in picks]
    shuffled = chosen + random.Random(seed).sample(chosen, len(chosen))
    random.Random(seed + 1).shuffle(shuffled)
    assert contributions(fold({}, chosen), RULES) == contributions(fold({}, shuffled), RULES)
    assert digest_of_events(chosen, RULES) == digest_of_events(shuffled, RULES)
    # Folding in two steps is folding in one.
    half = len(shuffled) // 2
    assert fold(fold({}, shuffled[:half]), shuffled[half:]) == fold({}, chosen)


@settings(max_examples=60, deadline=None)
@given(picks=st.lists(st.integers(0, len(UNIVERSE) - 1), max_size=60))
def test_explain_adds_up_to_the_score_and_caps_hold(picks: list[int]) -> None:
    items = contributions(fold({}, [UNIVERSE[i] for i in picks]), RULES)
    for cadre in ("c0", "c1", "c2"):
        scores = radar(items, cadre, *NOV, RULES)
        for dimension in Dimension:
            explained = explain(items, cadre, *NOV, dimension)
            assert sum(i.points for i in explained) == pytest.approx(scores.dimensions[dimension])
            endorsed = sum(i.points for i in explained if i.rule == "endorsement")
            assert endorsed <= RULES.points.endorsement_cap_per_half_year
        assert scores.composite == pytest.approx(sum(0.2 * v for v in scores.dimensions.values()))


@settings(max_examples=60, deadline=None)
@given(picks=st.lists(st.integers(0, len(UNIVERSE) - 1), max_size=80))
def test_contributions_come_in_the_tables_key_order_and_each_once(picks: list[int]) -> None:
    """In the order of the contributions table's key (cadre, event, rule, dimension), in
    which a replay copies them so that PostgreSQL indexes them faster, and no contribution
    twice (the key is unique)."""
    items = contributions(fold({}, [UNIVERSE[i] for i in picks]), RULES)
    keys = [(i.cadre_id, i.event_id, i.rule, i.dimension) for i in items]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(items)


def test_a_tag_given_twice_counts_once() -> None:
    posted = event("journal.entry_posted", entry_id="e1", tags=["publicity", "publicity"])
    items = contributions(fold({}, [posted]), RULES)
    assert [i.rule for i in items].count("tag:publicity") == 1


# ------------------------------------------------------------------ what is left unread


def _check_ins() -> list[AnyEvent]:
    destinations = {CheckInMode.BUSINESS_TRIP, CheckInMode.VILLAGE_VISIT, CheckInMode.GOING_OUT}
    return [
        event(
            "attendance.checked_in",
            mode=mode.value,
            branch_activity=branch and mode is CheckInMode.MEETING,
            destination="县城" if mode in destinations else None,
        )
        for mode in CheckInMode
        for branch in (False, True)
    ]


def _closed_days() -> list[AnyEvent]:
    return [
        event("attendance.day_closed", status=status.value, workday=workday)
        for status in DayStatus
        for workday in (False, True)
    ]


@pytest.mark.parametrize(
    "sample", [*all_samples(), *_check_ins(), *_closed_days(), *UNIVERSE], ids=str
)
def test_no_event_that_yields_a_fact_is_left_out_before_validation(sample: AnyEvent) -> None:
    """The consumer skips records `may_yield_facts` rejects without validating them, so it
    must never reject one that `facts_of` turns into a fact."""
    if facts_of(sample):
        assert may_yield_facts(sample.type, encode(sample).value)


def test_the_types_left_out_yield_no_facts_at_all() -> None:
    for sample in all_samples():
        if sample.type not in FOLDED_TYPES:
            assert facts_of(sample) == [], sample.type
            assert not may_yield_facts(sample.type, encode(sample).value)


def test_check_ins_are_read_only_as_meetings_and_doubtful_payloads_are_validated() -> None:
    checked_in = "attendance.checked_in"
    for sample in _check_ins():
        assert isinstance(sample, CheckedIn)
        meeting = sample.data.mode is CheckInMode.MEETING
        assert may_yield_facts(checked_in, encode(sample).value) is meeting
    # Anything not plainly another mode goes on to validation, which reports it.
    for payload in (b"{not json", b"[1, 2]", b'{"mode": 3}', b'{"mode": "Normal"}', b"{}", None):
        assert may_yield_facts(checked_in, payload)


def test_closed_days_are_read_only_when_they_count_and_doubtful_payloads_are_validated() -> None:
    day_closed = "attendance.day_closed"
    read = {
        (sample.data.status, sample.data.workday)
        for sample in _closed_days()
        if isinstance(sample, DayClosed) and may_yield_facts(day_closed, encode(sample).value)
    }
    # Present on a workday, or absent on any day: weekends, holidays and leave are skipped.
    assert read == {(DayStatus.PRESENT, True), (DayStatus.ABSENT, False), (DayStatus.ABSENT, True)}
    doubtful = (b"{not json", b"[1]", b'{"status": 3}', b'{"status": "HOLIDAY"}', b"{}")
    for payload in (*doubtful, b'{"status": "present"}', b'{"status": "present", "workday": 1}'):
        assert may_yield_facts(day_closed, payload)
