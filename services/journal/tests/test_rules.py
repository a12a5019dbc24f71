"""Every permission and domain rule of the journal, as pure functions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from cadre.events.auth import Principal
from cadre.events.vocabulary import Dimension, LeaderLevel, Role
from cadre.journal.domain.media import MediaKind, UploadPolicy, UploadRefused, check_size, sniff
from cadre.journal.domain.rules import (
    PastEndorsement,
    Refused,
    check_assigner,
    check_edit,
    check_endorsement,
    check_entry_day,
    check_reaction,
    check_tags,
    check_task_owner,
    entry_dimension,
    is_reciprocal,
    iso_week,
    may_view,
    study_shortfall,
)
from cadre.journal.domain.search import (
    document_tokens,
    like_pattern,
    query_tokens,
    rarest_token,
    tsquery_text,
)
from cadre.journal.domain.tasks import (
    TaskStatus,
    check_cancel,
    check_complete,
    check_grade,
    check_reopen,
    is_overdue,
    reopened_due,
)

TOWN = "/gz/wangmo/leye"
VILLAGE = "/gz/wangmo/leye/v1"
OTHER_TOWN = "/gz/wangmo/pingle"


def who(sub: str, path: str, *roles: Role, level: LeaderLevel | None = None) -> Principal:
    return Principal(sub, "gz", path, frozenset(roles or (Role.CADRE,)), level)


CADRE = who("c1", VILLAGE)
TOWN_LEADER = who("t1", TOWN, Role.LEADER, level=LeaderLevel.TOWNSHIP)
OTHER_LEADER = who("t2", OTHER_TOWN, Role.LEADER, level=LeaderLevel.TOWNSHIP)
COUNTY_LEADER = who("k1", "/gz/wangmo", Role.LEADER, level=LeaderLevel.COUNTY)
ORG_ADMIN = who("a1", "/gz", Role.ORG_ADMIN)
JUNIOR_ADMIN = who("a2", "/gz", Role.JUNIOR_ADMIN)


def refused(code: str, call: object, *args: object) -> None:
    with pytest.raises(Refused) as error:
        call(*args)  # type: ignore[operator]
    assert error.value.code == code


# ------------------------------------------------------------------ viewing


@pytest.mark.parametrize(
    ("viewer", "visible"),
    [
        (CADRE, True),
        (who("c2", VILLAGE), False),  # a colleague does not read my journal
        (TOWN_LEADER, True),
        (OTHER_LEADER, False),
        (COUNTY_LEADER, True),
        (ORG_ADMIN, True),
        (JUNIOR_ADMIN, True),
        (who("x", TOWN, Role.LEADER), True),
    ],
)
def test_who_sees_an_entry(viewer: Principal, visible: bool) -> None:
    assert may_view(viewer, "c1", VILLAGE) is visible


def test_a_subtree_is_a_path_prefix_at_a_boundary() -> None:
    leader = who("t", "/gz/wangmo/le", Role.LEADER, level=LeaderLevel.TOWNSHIP)
    assert not may_view(leader, "c1", VILLAGE)  # /le is not a parent of /leye


# ------------------------------------------------------------------ entries


def test_tags_are_cleaned_limited_and_give_the_entry_its_dimension() -> None:
    assert check_tags([" publicity ", "publicity", "扶贫"]) == ("publicity", "扶贫")
    refused("bad-tag", check_tags, ["two words"])
    refused("too-many-tags", check_tags, [f"t{i}" for i in range(11)])
    assert entry_dimension(["扶贫", "study_notes"]) is Dimension.LEARNING
    assert entry_dimension(["resource_matching"]) is None
    assert entry_dimension([]) is None


def test_an_entry_is_for_today_or_a_day_back_and_never_for_a_missed_day() -> None:
    today = date(2026, 11, 23)
    check_entry_day(today, today, 1, missed=False)
    check_entry_day(today - timedelta(days=1), today, 1, missed=False)
    refused("entry-in-future", check_entry_day, today + timedelta(days=1), today, 1, False)
    refused("entry-too-old", check_entry_day, today - timedelta(days=2), today, 1, False)
    refused("day-already-missed", check_entry_day, today, today, 1, True)


def test_only_the_author_edits_and_only_for_a_while() -> None:
    today = date(2026, 11, 23)
    check_edit(CADRE, "c1", today - timedelta(days=7), today, 7)
    refused("not-your-entry", check_edit, TOWN_LEADER, "c1", today, today, 7)
    refused("entry-locked", check_edit, CADRE, "c1", today - timedelta(days=8), today, 7)


# ------------------------------------------------------------------ reactions

ALL = frozenset(LeaderLevel)


def test_a_leader_over_the_author_reacts_at_their_level() -> None:
    assert check_reaction(TOWN_LEADER, "c1", VILLAGE, ALL) is LeaderLevel.TOWNSHIP
    assert check_reaction(COUNTY_LEADER, "c1", VILLAGE, ALL) is LeaderLevel.COUNTY


@pytest.mark.parametrize(
    ("reactor", "code", "levels"),
    [
        (CADRE, "self-reaction", ALL),
        (who("c2", VILLAGE), "not-a-leader", ALL),
        (ORG_ADMIN, "not-a-leader", ALL),
        (who("t3", TOWN, Role.LEADER), "not-a-leader", ALL),  # a leader without a level
        (OTHER_LEADER, "outside-unit", ALL),
        (TOWN_LEADER, "level-not-allowed", frozenset({LeaderLevel.COUNTY})),
    ],
)
def test_reactions_refused(reactor: Principal, code: str, levels: frozenset[LeaderLevel]) -> None:
    refused(code, check_reaction, reactor, "c1", VILLAGE, levels)


def test_a_leader_does_not_react_to_their_own_entry() -> None:
    refused("self-reaction", check_reaction, TOWN_LEADER, "t1", TOWN, ALL)


# ------------------------------------------------------------------ endorsements


def test_endorsements_are_between_colleagues_of_one_unit() -> None:
    check_endorsement(CADRE, "v1", "c2", "v1")
    refused("self-endorsement", check_endorsement, CADRE, "v1", "c1", "v1")
    refused("not-same-unit", check_endorsement, CADRE, "v1", "c3", "v2")
    refused("cadre-not-found", check_endorsement, CADRE, "v1", "ghost", None)
    refused("not-same-unit", check_endorsement, CADRE, None, "c2", "v1")  # not registered


def test_a_pair_endorsing_each_other_repeatedly_is_flagged_reciprocal() -> None:
    today = date(2026, 11, 23)

    def past(endorser: str, target: str, days_ago: int) -> PastEndorsement:
        return PastEndorsement(endorser, target, today - timedelta(days=days_ago))

    once_back = [past("b", "a", 3)]
    assert not is_reciprocal("a", "b", today, once_back)
    back_and_forth = [past("a", "b", 20), past("b", "a", 13), past("b", "a", 6)]
    assert is_reciprocal("a", "b", today, back_and_forth)
    assert not is_reciprocal("a", "b", today, [past("a", "b", 90), *back_and_forth[1:]])
    one_way = [past("a", "b", 20), past("a", "b", 13)]
    assert not is_reciprocal("a", "b", today, one_way)


def test_iso_weeks_name_the_once_a_week_window() -> None:
    assert iso_week(date(2026, 11, 23)) == "2026-W48"
    assert iso_week(date(2027, 1, 1)) == "2026-W53"


# ------------------------------------------------------------------ tasks


def test_leaders_assign_within_their_subtree_and_admins_anywhere() -> None:
    check_assigner(TOWN_LEADER, VILLAGE)
    check_assigner(ORG_ADMIN, OTHER_TOWN)
    refused("outside-unit", check_assigner, TOWN_LEADER, OTHER_TOWN)
    refused("not-a-leader", check_assigner, CADRE, VILLAGE)
    refused("not-a-leader", check_assigner, JUNIOR_ADMIN, VILLAGE)  # reads, never assigns


def test_the_assigner_or_a_leader_above_owns_grading_reopening_and_cancelling() -> None:
    check_task_owner(OTHER_LEADER, "t2", VILLAGE)  # the assigner, even after a transfer
    check_task_owner(COUNTY_LEADER, "t1", VILLAGE)
    refused("outside-unit", check_task_owner, OTHER_LEADER, "t1", VILLAGE)
    refused("not-a-leader", check_task_owner, CADRE, "t1", VILLAGE)


def test_the_life_of_a_task() -> None:
    check_complete(TaskStatus.OPEN, "c1", "c1", has_evidence=True)
    refused("not-your-task", check_complete, TaskStatus.OPEN, "c1", "c2", True)
    refused("evidence-required", check_complete, TaskStatus.OPEN, "c1", "c1", False)
    refused("task-completed", check_complete, TaskStatus.COMPLETED, "c1", "c1", True)
    refused("task-cancelled", check_complete, TaskStatus.CANCELLED, "c1", "c1", True)
    check_grade(TaskStatus.COMPLETED)
    refused("task-not-completed", check_grade, TaskStatus.OPEN)
    check_reopen(TaskStatus.COMPLETED)
    refused("task-not-completed", check_reopen, TaskStatus.CANCELLED)
    check_cancel(TaskStatus.OPEN)
    refused("task-completed", check_cancel, TaskStatus.COMPLETED)


def test_overdue_once_while_open_and_a_reopened_task_gets_a_fresh_due_time() -> None:
    now = datetime(2026, 11, 23, 8, tzinfo=UTC)
    due = now - timedelta(minutes=1)
    assert is_overdue(TaskStatus.OPEN, due, now, noted=False)
    assert not is_overdue(TaskStatus.OPEN, due, now, noted=True)
    assert not is_overdue(TaskStatus.COMPLETED, due, now, noted=False)
    assert not is_overdue(TaskStatus.OPEN, now + timedelta(seconds=1), now, noted=False)
    assert reopened_due(due, now, None) == now + timedelta(days=3)
    ahead = now + timedelta(days=1)
    assert reopened_due(ahead, now, None) == ahead
    assert reopened_due(due, now, ahead) == ahead
    refused("due-in-past", reopened_due, due, now, due)


def test_study_shortfall_never_goes_negative() -> None:
    assert [study_shortfall(2, done) for done in (0, 1, 2, 5)] == [2, 1, 0, 0]


# ------------------------------------------------------------------ search


def test_chinese_is_indexed_as_characters_and_bigrams_and_latin_as_words() -> None:
    assert document_tokens("产业扶贫 Village-Visit") == sorted(
        ["产", "业", "扶", "贫", "产业", "业扶", "扶贫", "village", "visit"]
    )
    assert query_tokens("扶贫") == ["扶贫"]
    assert query_tokens("产业扶贫") == ["业扶", "产业", "扶贫"]
    assert query_tokens("署") == ["署"]
    assert query_tokens("，。！") == []
    assert set(query_tokens("脱贫攻坚")) <= set(document_tokens("巩固脱贫攻坚成果"))
    # full-width letters and digits are folded, so a phone keyboard matches
    assert query_tokens("ＡＢＣ１２") == ["abc12"]


def test_the_rarest_token_of_a_keyword_narrows_the_search() -> None:
    frequencies = {"产业": 0.2, "业扶": 0.15, "扶贫": 0.3}
    assert rarest_token(["业扶", "产业", "扶贫"], frequencies) == "业扶"
    assert rarest_token(["产业", "贫合"], frequencies) == "贫合"  # unlisted: rarer
    assert rarest_token(["扶贫"], {}) == "扶贫"


def test_query_text_is_quoted_and_like_patterns_escaped() -> None:
    assert tsquery_text(["扶贫", "it's"]) == "'扶贫' & 'it''s'"
    assert like_pattern("100%_x") == "%100\\%\\_x%"


# ------------------------------------------------------------------ uploads

JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
PDF_HEAD = b"%PDF-1.7\n"


def test_the_content_decides_the_type_not_the_name() -> None:
    assert sniff(JPEG_HEAD, "x.pdf").media_type == "image/jpeg"
    assert sniff(PDF_HEAD, "x.jpg").kind is MediaKind.DOCUMENT
    for head in (b"\x7fELF\x02\x01", b"MZ\x90\x00", b"plain words", b"PK\x03\x04zip"):
        with pytest.raises(UploadRefused) as error:
            sniff(head, "photo.jpg")
        assert error.value.status == 415


def test_each_kind_has_its_size_limit() -> None:
    policy = UploadPolicy()
    image = sniff(JPEG_HEAD)
    check_size(image, policy.limits[MediaKind.IMAGE], policy)
    with pytest.raises(UploadRefused) as error:
        check_size(image, policy.limits[MediaKind.IMAGE] + 1, policy)
    assert error.value.status == 413
    with pytest.raises(UploadRefused):
        check_size(image, 0, policy)
    assert policy.largest == policy.limits[MediaKind.VIDEO]
