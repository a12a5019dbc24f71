"""The journal on the real servers: entries with real thumbnails, refused uploads that leave
nothing behind, the Chinese back-check, reactions, endorsements, tasks and study, and the
missed-journal and overdue events emitted once across restarts. Each test module has its own
tenant, database, topics, consumer group and blob directory; tokens are minted as the
directory would mint them."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from PIL import Image

from cadre.devstack.infra import Infra, create_databases, create_topics
from cadre.devstack.synthetic import SyntheticTenant
from cadre.devstack.testing import TokenMint, eventually, publish_events, read_topic, unique_tenant
from cadre.events.catalogue import AnyEvent
from cadre.events.db import migrate_async
from cadre.events.topics import events_topic
from cadre.events.vocabulary import LeaderLevel, Role
from cadre.events.wire import decode, header_map
from cadre.journal.adapters.tables import endorsements, people
from cadre.journal.entrypoints.app import create_app
from cadre.journal.entrypoints.jobs import note_overdue
from cadre.journal.settings import JournalSettings

JOURNAL_TOPIC = events_topic("journal")


@dataclass
class Journal:
    app: FastAPI
    client: httpx.AsyncClient
    settings: JournalSettings
    tenant: str
    synthetic: SyntheticTenant
    mint: TokenMint
    topics: dict[str, str]
    bootstrap: str
    blob_dir: Path

    def cadre(self, n: int) -> dict[str, str]:
        s = self.synthetic
        return self.mint.headers(s.cadre_id(n), s.unit_path(n), Role.CADRE)

    def leader(self, town: str, level: LeaderLevel = LeaderLevel.TOWNSHIP) -> dict[str, str]:
        path = f"/{self.tenant}/{town}" if town else f"/{self.tenant}"
        return self.mint.headers(f"leader-{town or 'county'}", path, Role.LEADER, level=level)

    def county_leader(self) -> dict[str, str]:
        return self.mint.headers(
            "leader-county", f"/{self.tenant}", Role.LEADER, level=LeaderLevel.COUNTY
        )

    def admin(self) -> dict[str, str]:
        return self.mint.headers("orgadmin", f"/{self.tenant}", Role.ORG_ADMIN)

    async def publish(self, events: list[AnyEvent]) -> None:
        await publish_events(self.bootstrap, events, lambda e: self.topics[e.source])

    async def emitted(
        self,
        event_type: str,
        at_least: int = 1,
        where: Callable[[dict[str, Any]], bool] = lambda _: True,
    ) -> list[dict[str, Any]]:
        """The journal's events of this tenant and type on Kafka (distinct ids), of those
        `where` accepts: waits for `at_least` of those, not of any of the tenant's."""

        def mine(records: list[Any]) -> list[dict[str, Any]]:
            found: dict[str, dict[str, Any]] = {}
            for record in records:
                headers = header_map(record.headers)
                if headers.get("ce_type") != event_type:
                    continue
                event = decode(record.headers, record.value)
                if event.tenant == self.tenant:
                    dumped = event.model_dump(mode="json")
                    if where(dumped):
                        found[str(event.id)] = dumped
            return list(found.values())

        records = await read_topic(
            self.bootstrap, JOURNAL_TOPIC, until=lambda rs: len(mine(rs)) >= at_least
        )
        return mine(records)

    def blob_files(self) -> list[Path]:
        return [p for p in self.blob_dir.rglob("*") if p.is_file()]


def jpeg(width: int = 1200, height: int = 800) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 60, 40)).save(out, "JPEG")
    return out.getvalue()


def journal_settings(
    url: str, bootstrap: str, topics: dict[str, str], **extra: Any
) -> JournalSettings:
    return JournalSettings(
        database_url=url,
        kafka_bootstrap=bootstrap,
        relay_poll_interval_s=0.2,
        inbound_topics=[topics["directory"], topics["attendance"]],
        **extra,
    )


@pytest_asyncio.fixture(scope="module")
async def journal(
    infra: Infra, kafka_bootstrap: str, tmp_path_factory: Any
) -> AsyncIterator[Journal]:
    tenant = unique_tenant()
    database = f"journal_{uuid.uuid4().hex[:8]}"
    await create_databases(infra.pg_url("postgres", "postgresql"), [database])
    url = infra.pg_url(database)
    await migrate_async("cadre.journal.adapters.migrations", url)
    suffix = uuid.uuid4().hex[:8]
    topics = {s: f"journal-test-{s}.{suffix}.v1" for s in ("directory", "attendance")}
    await create_topics(
        kafka_bootstrap, [t for name in topics.values() for t in (name, name + ".dlq")]
    )
    blob_dir = tmp_path_factory.mktemp("blobs")
    settings = journal_settings(
        url,
        kafka_bootstrap,
        topics,
        consumer_group=f"journal-test-{suffix}",
        blob_dir=blob_dir,
        max_image_mib=0.5,
        overdue_interval_s=0.5,
    )
    app = create_app(settings)
    synthetic = SyntheticTenant(tenant, cadres=12, days=0)
    mint = TokenMint(tenant)
    async with app.router.lifespan_context(app):
        app.state.verifier = mint.verifier()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://j")
        journal = Journal(
            app, client, settings, tenant, synthetic, mint, topics, kafka_bootstrap, blob_dir
        )
        await journal.publish(synthetic.directory())

        async def replica_ready() -> bool:
            async with app.state.sessions() as session:
                rows = (
                    await session.execute(people.select().where(people.c.tenant == tenant))
                ).all()
            return len(rows) == 12

        await eventually(replica_ready, message="the directory replica")
        yield journal
        await client.aclose()


pytestmark = [pytest.mark.integration]


async def post_entry(
    journal: Journal, headers: dict[str, str], text: str, tags: list[str] | None = None, **kw: Any
) -> dict[str, Any]:
    response = await journal.client.post(
        "/v1/entries", headers=headers, json={"text": text, "tags": tags or [], **kw}
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


# ------------------------------------------------------------------ entries and attachments


async def test_an_entry_with_a_photo_gets_a_real_thumbnail_and_is_published(
    journal: Journal,
) -> None:
    photo = jpeg(1200, 800)
    response = await journal.client.post(
        "/v1/entries",
        headers=journal.cadre(0),
        data={"text": "走访坡头村三户脱贫户，核实帮扶措施落实情况。", "tags": "publicity"},
        files=[("files", ("visit.jpg", photo, "image/jpeg"))],
    )
    assert response.status_code == 201, response.text
    entry = response.json()
    [attachment] = entry["attachments"]
    assert attachment["media_type"] == "image/jpeg"
    assert attachment["kind"] == "image"
    assert attachment["size_bytes"] == len(photo)
    thumb = await journal.client.get(attachment["thumbnail_url"], headers=journal.cadre(0))
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert image.format == "JPEG"
        assert max(image.size) == 320
        assert image.size == (320, 213)
    original = await journal.client.get(attachment["url"], headers=journal.leader("east"))
    assert original.content == photo
    # Someone outside the author's scope sees neither the entry nor its files.
    assert (
        await journal.client.get(attachment["url"], headers=journal.cadre(2))
    ).status_code == 404
    published = await journal.emitted(
        "journal.entry_posted", where=lambda e: e["data"]["entry_id"] == entry["entry_id"]
    )
    assert published[0]["data"]["attachments"][0]["sha256"] == attachment["sha256"]
    assert published[0]["data"]["tags"] == ["publicity"]


@pytest.mark.parametrize(
    ("name", "content", "status", "code"),
    [
        ("notes.txt", "今天的工作记录".encode() * 10, 415, "unsupported-media-type"),
        ("photo.jpg", b"\x7fELF\x02\x01\x01" + b"\x00" * 4000, 415, "unsupported-media-type"),
        ("setup.jpg", b"MZ\x90\x00\x03" + b"\x00" * 4000, 415, "unsupported-media-type"),
        ("broken.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 4000, 422, "corrupt-image"),
        ("huge.jpg", None, 413, "attachment-too-large"),
    ],
)
async def test_a_bad_upload_is_refused_and_leaves_nothing_behind(
    journal: Journal, name: str, content: bytes | None, status: int, code: str
) -> None:
    if content is None:  # over the test's 0.5 MiB image limit, and a real JPEG
        content = b"".join([jpeg(64, 64), b"\x00" * (600 * 1024)])
    before_files = journal.blob_files()
    mine = await journal.client.get("/v1/entries", headers=journal.cadre(4))
    good = ("ok.jpg", jpeg(50, 50), "image/jpeg")  # a good file in the same request
    response = await journal.client.post(
        "/v1/entries",
        headers=journal.cadre(4),
        data={"text": "带附件的日志"},
        files=[("files", good), ("files", (name, content, "image/jpeg"))],
    )
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert response.headers["content-type"].startswith("application/problem+json")
    assert journal.blob_files() == before_files
    after = await journal.client.get("/v1/entries", headers=journal.cadre(4))
    assert after.json()["items"] == mine.json()["items"]


async def test_edits_keep_the_history_and_publish_a_new_revision(journal: Journal) -> None:
    entry = await post_entry(journal, journal.cadre(6), "初稿：召开村民小组会议", ["study_notes"])
    edited = await journal.client.patch(
        f"/v1/entries/{entry['entry_id']}",
        headers=journal.cadre(6),
        json={"text": "定稿：召开村民小组会议，传达会议精神", "tags": ["ideological_report"]},
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["revision"] == 2
    assert edited.json()["dimension"] == "politics"
    other = await journal.client.patch(
        f"/v1/entries/{entry['entry_id']}", headers=journal.leader("east"), json={"text": "x"}
    )
    assert other.status_code == 403
    history = await journal.client.get(
        f"/v1/entries/{entry['entry_id']}/history", headers=journal.cadre(6)
    )
    assert [(r["revision"], r["text"][:2]) for r in history.json()] == [(1, "初稿"), (2, "定稿")]
    # This entry's two events: the tenant's other entries must not satisfy the wait early.
    revisions = [
        e["data"]["revision"]
        for e in await journal.emitted(
            "journal.entry_posted",
            at_least=2,
            where=lambda e: e["data"]["entry_id"] == entry["entry_id"],
        )
    ]
    assert sorted(revisions) == [1, 2]


# ------------------------------------------------------------------ feed and back-check


async def test_the_chinese_back_check_finds_keywords_within_the_viewers_subtree(
    journal: Journal,
) -> None:
    east, west = journal.cadre(8), journal.cadre(9)  # c008 east, c009 west
    a = await post_entry(journal, east, "开展产业扶贫调研，走访合作社。")
    b = await post_entry(journal, west, "参加扶贫工作推进会，部署下一阶段任务。")
    await post_entry(journal, east, "贫困户危房改造验收，扶持资金到位。")  # 扶 and 贫, not 扶贫

    async def found(headers: dict[str, str], q: str, **params: Any) -> set[str]:
        response = await journal.client.get(
            "/v1/back-check", headers=headers, params={"q": q, **params}
        )
        assert response.status_code == 200, response.text
        return {item["entry_id"] for item in response.json()["items"]}

    assert await found(journal.leader("east"), "扶贫") == {a["entry_id"]}
    assert await found(journal.leader("west"), "扶贫") == {b["entry_id"]}
    county = journal.county_leader()
    assert {a["entry_id"], b["entry_id"]} <= await found(county, "扶贫")
    assert await found(county, "产业扶贫") == {a["entry_id"]}
    assert await found(county, "扶贫 合作社") == {a["entry_id"]}  # every keyword
    assert b["entry_id"] in await found(county, "署")  # one character
    assert await found(east, "扶贫") == {a["entry_id"]}  # a cadre: their own entries
    outside = await journal.client.get(
        "/v1/back-check", headers=journal.leader("east"), params={"q": "扶贫", "unit_id": "west"}
    )
    assert outside.status_code == 403
    empty = await journal.client.get("/v1/back-check", headers=county, params={"q": "，。！"})
    assert empty.status_code == 422
    assert empty.json()["code"] == "empty-query"


async def test_the_feed_filters_and_pages_newest_first(journal: Journal) -> None:
    cadre = journal.cadre(10)  # east
    posted = [
        await post_entry(journal, cadre, f"第{i}条日志", ["coordination_success"]) for i in range(5)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"cadre_id": "c010", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (
            await journal.client.get("/v1/feed", headers=journal.leader("east"), params=params)
        ).json()
        seen += [item["entry_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [p["entry_id"] for p in reversed(posted)]
    tagged = await journal.client.get(
        "/v1/feed",
        headers=journal.admin(),
        params={"tag": "coordination_success", "has_attachment": "false", "cadre_id": "c010"},
    )
    assert len(tagged.json()["items"]) == 5
    west = await journal.client.get(
        "/v1/feed", headers=journal.leader("west"), params={"cadre_id": "c010"}
    )
    assert west.json()["items"] == []
    bad = await journal.client.get("/v1/feed", headers=cadre, params={"cursor": "nonsense!"})
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid-cursor"


# ------------------------------------------------------------------ reactions


async def test_leader_reactions_need_a_reason_and_the_right_scope(journal: Journal) -> None:
    entry = await post_entry(
        journal, journal.cadre(2), "协调解决灌溉用水纠纷", ["coordination_success"]
    )
    url = f"/v1/entries/{entry['entry_id']}/reactions"
    east, west = journal.leader("east"), journal.leader("west")
    no_reason = await journal.client.post(url, headers=east, json={"reaction": "like"})
    assert no_reason.status_code == 422
    blank = await journal.client.post(url, headers=east, json={"reaction": "like", "reason": ""})
    assert blank.status_code == 422
    wrong_scope = await journal.client.post(
        url, headers=west, json={"reaction": "like", "reason": "好"}
    )
    assert wrong_scope.status_code == 403
    assert wrong_scope.json()["code"] == "outside-unit"
    by_cadre = await journal.client.post(
        url, headers=journal.cadre(4), json={"reaction": "like", "reason": "好"}
    )
    assert by_cadre.json()["code"] == "not-a-leader"
    liked = await journal.client.post(
        url, headers=east, json={"reaction": "like", "reason": "化解矛盾及时"}
    )
    assert liked.status_code == 201, liked.text
    assert liked.json()["level"] == "township"
    same = await journal.client.post(
        url, headers=east, json={"reaction": "like", "reason": "化解矛盾及时"}
    )
    assert same.status_code == 200
    county = await journal.client.post(
        url, headers=journal.county_leader(), json={"reaction": "dislike", "reason": "材料不全"}
    )
    assert county.status_code == 201
    changed = await journal.client.post(
        url, headers=east, json={"reaction": "dislike", "reason": "复核后发现问题"}
    )
    assert changed.status_code == 200
    shown = (await journal.client.get(f"/v1/entries/{entry['entry_id']}", headers=east)).json()
    assert (shown["likes"], shown["dislikes"]) == (0, 2)
    assert (await journal.client.delete(url, headers=east)).status_code == 204
    assert (await journal.client.delete(url, headers=east)).status_code == 404
    journal.settings.reaction_levels[journal.tenant] = [LeaderLevel.COUNTY]
    try:
        township = await journal.client.post(
            url, headers=east, json={"reaction": "like", "reason": "好"}
        )
        assert township.json()["code"] == "level-not-allowed"
    finally:
        journal.settings.reaction_levels.pop(journal.tenant)

    reacted = await journal.emitted(
        "journal.entry_reacted",
        at_least=3,
        where=lambda e: e["data"]["entry_id"] == entry["entry_id"],
    )
    assert sorted((e["actor"], e["data"]["reaction"]) for e in reacted) == [
        ("leader-county", "dislike"),
        ("leader-east", "dislike"),
        ("leader-east", "like"),
    ]
    assert {e["data"]["dimension"] for e in reacted} == {"communication"}
    assert all(e["subject"] == "c002" for e in reacted)
    [retracted] = await journal.emitted(
        "journal.reaction_retracted", where=lambda e: e["data"]["entry_id"] == entry["entry_id"]
    )
    assert retracted["data"]["reaction"] == "dislike"


async def test_nobody_reacts_to_their_own_entry(journal: Journal) -> None:
    leader = journal.mint.headers(
        "c004", journal.synthetic.unit_path(4), Role.CADRE, Role.LEADER, level=LeaderLevel.TOWNSHIP
    )
    entry = await post_entry(journal, leader, "带队检查安全生产")
    response = await journal.client.post(
        f"/v1/entries/{entry['entry_id']}/reactions",
        headers=leader,
        json={"reaction": "like", "reason": "自夸"},
    )
    assert response.status_code == 403
    assert response.json()["code"] == "self-reaction"


# ------------------------------------------------------------------ endorsements


async def test_endorsements_between_colleagues_once_a_week_and_reciprocal_pairs_flagged(
    journal: Journal,
) -> None:
    body = {"cadre_id": "c002", "dimension": "responsibility", "reason": "主动顶班"}
    first = await journal.client.post("/v1/endorsements", headers=journal.cadre(0), json=body)
    assert first.status_code == 201, first.text
    assert first.json()["reciprocal"] is False
    again = await journal.client.post("/v1/endorsements", headers=journal.cadre(0), json=body)
    assert again.status_code == 409
    assert again.json()["code"] == "already-endorsed-this-week"
    other_unit = await journal.client.post("/v1/endorsements", headers=journal.cadre(1), json=body)
    assert other_unit.json()["code"] == "not-same-unit"
    itself = await journal.client.post("/v1/endorsements", headers=journal.cadre(2), json=body)
    assert itself.json()["code"] == "self-endorsement"
    no_reason = await journal.client.post(
        "/v1/endorsements", headers=journal.cadre(0), json={**body, "reason": ""}
    )
    assert no_reason.status_code == 422

    # c006 and c008 have endorsed each other back and forth in earlier weeks.
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    past = [("c006", "c008", 14), ("c008", "c006", 13), ("c008", "c006", 6)]
    async with journal.app.state.sessions() as session, session.begin():
        for n, (endorser, target, days_ago) in enumerate(past):
            day = today - timedelta(days=days_ago)
            await session.execute(
                endorsements.insert().values(
                    tenant=journal.tenant,
                    endorsement_id=f"past-{uuid.uuid4().hex[:6]}-{n}",
                    endorser_id=endorser,
                    target_id=target,
                    dimension="learning",
                    reason="以前的",
                    week=f"{day.isocalendar()[0]}-W{day.isocalendar()[1]:02d}",
                    day=day,
                    reciprocal=False,
                    endorsed_at=datetime.now(UTC) - timedelta(days=days_ago),
                )
            )
    flagged = await journal.client.post(
        "/v1/endorsements",
        headers=journal.cadre(6),
        json={"cadre_id": "c008", "dimension": "learning", "reason": "帮我整理材料"},
    )
    assert flagged.json()["reciprocal"] is True
    ours = {flagged.json()["endorsement_id"], first.json()["endorsement_id"]}
    events = {
        e["data"]["endorsement_id"]: e
        for e in await journal.emitted(
            "journal.peer_endorsed",
            at_least=2,
            where=lambda e: e["data"]["endorsement_id"] in ours,
        )
    }
    assert events[flagged.json()["endorsement_id"]]["data"]["reciprocal"] is True
    assert events[first.json()["endorsement_id"]]["subject"] == "c002"
    received = await journal.client.get("/v1/endorsements", headers=journal.cadre(2))
    assert [i["endorser_id"] for i in received.json()["items"]] == ["c000"]


# ------------------------------------------------------------------ tasks


async def test_a_unit_task_fans_out_to_the_members_of_the_subtree(journal: Journal) -> None:
    due = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    task = {
        "title": "人居环境整治",
        "due_at": due,
        "reward_points": 5,
        "penalty_points": 3,
        "dimension": "responsibility",
        "unit_id": "east",
    }
    refused = await journal.client.post("/v1/tasks", headers=journal.leader("west"), json=task)
    assert refused.status_code == 403
    by_cadre = await journal.client.post("/v1/tasks", headers=journal.cadre(0), json=task)
    assert by_cadre.status_code == 403
    response = await journal.client.post("/v1/tasks", headers=journal.leader("east"), json=task)
    assert response.status_code == 201, response.text
    assigned = response.json()
    east = sorted(journal.synthetic.cadre_id(n) for n in range(0, 12, 2))
    assert assigned["assignees"] == 6
    assert sorted(t["cadre_id"] for t in assigned["tasks"]) == east
    events = await journal.emitted(
        "journal.task_assigned",
        at_least=6,
        where=lambda e: e["data"]["group_id"] == assigned["group_id"],
    )
    assert sorted(e["subject"] for e in events) == east

    mine = {t["cadre_id"]: t for t in assigned["tasks"]}
    task_id = mine["c000"]["task_id"]
    no_evidence = await journal.client.post(
        f"/v1/tasks/{task_id}/complete", headers=journal.cadre(0), json={}
    )
    assert no_evidence.json()["code"] == "evidence-required"
    not_mine = await journal.client.post(
        f"/v1/tasks/{task_id}/complete", headers=journal.cadre(2), json={"entry_id": "x"}
    )
    assert not_mine.status_code == 404
    evidence = await post_entry(journal, journal.cadre(0), "清理河道垃圾三处")
    done = await journal.client.post(
        f"/v1/tasks/{task_id}/complete",
        headers=journal.cadre(0),
        json={"entry_id": evidence["entry_id"]},
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    graded = await journal.client.post(
        f"/v1/tasks/{task_id}/grade", headers=journal.leader("east"), json={"quality_pct": 80}
    )
    assert graded.json()["quality_pct"] == 80
    reopened = await journal.client.post(
        f"/v1/tasks/{task_id}/reopen", headers=journal.leader("east"), json={"reason": "不彻底"}
    )
    assert reopened.json()["status"] == "open"
    with_file = await journal.client.post(
        f"/v1/tasks/{task_id}/complete",
        headers=journal.cadre(0),
        files=[("file", ("after.jpg", jpeg(300, 200), "image/jpeg"))],
    )
    assert with_file.status_code == 200, with_file.text
    sha = with_file.json()["evidence_sha256"]
    assert (
        await journal.client.get(f"/v1/attachments/{sha}", headers=journal.leader("east"))
    ).status_code == 200
    other = mine["c002"]["task_id"]
    cancelled = await journal.client.post(
        f"/v1/tasks/{other}/cancel", headers=journal.leader("east"), json={"reason": "合并"}
    )
    assert cancelled.json()["status"] == "cancelled"
    twice = await journal.client.post(
        f"/v1/tasks/{other}/cancel", headers=journal.leader("east"), json={"reason": "合并"}
    )
    assert twice.status_code == 409
    types = {
        e["type"]
        for kind in ("task_completed", "task_graded", "task_reopened", "task_cancelled")
        for e in await journal.emitted(
            f"journal.{kind}", where=lambda e: e["data"]["task_id"] in (task_id, other)
        )
    }
    assert types == {
        "journal.task_completed",
        "journal.task_graded",
        "journal.task_reopened",
        "journal.task_cancelled",
    }


async def test_overdue_is_emitted_once_across_restarts(journal: Journal) -> None:
    due = datetime.now(UTC) + timedelta(seconds=1.5)
    response = await journal.client.post(
        "/v1/tasks",
        headers=journal.leader("west"),
        json={
            "title": "报送材料",
            "due_at": due.isoformat(),
            "reward_points": 2,
            "penalty_points": 4,
            "dimension": "discipline",
            "cadre_id": "c003",
        },
    )
    assert response.status_code == 201, response.text
    task_id = response.json()["tasks"][0]["task_id"]

    async def noted() -> bool:
        got = await journal.client.get(f"/v1/tasks/{task_id}", headers=journal.cadre(3))
        return bool(got.json()["overdue"])

    await eventually(noted, message="the overdue sweep")
    # A second instance on the same database (a restart, or scale-out) sweeps again.
    second = create_app(journal.settings.model_copy(update={"consumer_group": "other"}))
    async with second.router.lifespan_context(second):
        await asyncio.sleep(1.5)
    assert await note_overdue(journal.app.state.sessions, datetime.now(UTC)) == 0
    await asyncio.sleep(1)
    overdue = await journal.emitted(
        "journal.task_overdue", where=lambda e: e["data"]["task_id"] == task_id
    )
    assert len(overdue) == 1
    assert overdue[0]["data"]["penalty_points"] == 4
    assert overdue[0]["occurred_at"].startswith(due.isoformat()[:19])


# ------------------------------------------------------------------ missed journal


def attendance_event(journal: Journal, event_type: str, n: int, **data: Any) -> AnyEvent:
    from cadre.events.catalogue import EVENT_ADAPTER
    from cadre.events.envelope import new_event_id

    return EVENT_ADAPTER.validate_python(
        {
            "id": new_event_id(),
            "type": event_type,
            "tenant": journal.tenant,
            "subject": journal.synthetic.cadre_id(n),
            "unit_path": journal.synthetic.unit_path(n),
            "occurred_at": datetime.now(UTC),
            "actor": "attendance",
            "data": data,
        }
    )


async def test_a_workday_closed_without_an_entry_is_missed_once_across_restarts(
    journal: Journal,
) -> None:
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    await post_entry(journal, journal.cadre(1), "今天写了日志")

    def closed(n: int, status: str = "present", workday: bool = True) -> AnyEvent:
        return attendance_event(
            journal, "attendance.day_closed", n, day=day.isoformat(), status=status, workday=workday
        )

    leave = attendance_event(
        journal,
        "attendance.leave_approved",
        5,
        leave_id=f"l-{uuid.uuid4().hex[:6]}",
        kind="sick",
        starts_on=(day - timedelta(days=1)).isoformat(),
        ends_on=day.isoformat(),
        workdays=1,
    )
    closing = [
        closed(1),  # wrote an entry
        closed(3, "absent"),  # absent and no entry: missed
        closed(5),  # on approved leave (half a day present)
        closed(7, "on_leave"),
        closed(11, "holiday", workday=False),
    ]
    await journal.publish([leave])
    await asyncio.sleep(1)  # leave first, as attendance approves before the day closes
    await journal.publish(closing)
    missed = await journal.emitted("journal.journal_missed")
    # Redelivery, a second close of the same day, and a fresh consumer group replaying
    # everything from the start all leave the one event alone.
    await journal.publish([closing[1], closed(3, "absent")])
    second = create_app(
        journal.settings.model_copy(update={"consumer_group": f"replay-{uuid.uuid4().hex[:6]}"})
    )
    async with second.router.lifespan_context(second):
        second.state.verifier = journal.mint.verifier()
        await asyncio.sleep(4)
    await asyncio.sleep(1)
    missed = await journal.emitted("journal.journal_missed")
    assert [(e["subject"], e["data"]["day"]) for e in missed] == [("c003", day.isoformat())]
    late = await journal.client.post(
        "/v1/entries", headers=journal.cadre(3), json={"text": "补写", "day": day.isoformat()}
    )
    assert late.status_code == 409
    assert late.json()["code"] == "day-already-missed"


# ------------------------------------------------------------------ study


async def test_study_reaches_the_unit_and_the_monthly_shortfall_is_queryable(
    journal: Journal,
) -> None:
    assigned = await journal.client.post(
        "/v1/study",
        headers=journal.leader("west"),
        json={"title": "党的二十届四中全会精神", "unit_id": "west", "party_theory": True},
    )
    assert assigned.status_code == 201, assigned.text
    assert assigned.json()["assignees"] == 6
    study_id = assigned.json()["study_id"]
    done = await journal.client.post(
        f"/v1/study/{study_id}/complete", headers=journal.cadre(1), json={"minutes": 45}
    )
    assert done.status_code == 200, done.text
    again = await journal.client.post(
        f"/v1/study/{study_id}/complete", headers=journal.cadre(1), json={"minutes": 45}
    )
    assert again.status_code == 409
    not_assigned = await journal.client.post(
        f"/v1/study/{study_id}/complete", headers=journal.cadre(0), json={"minutes": 5}
    )
    assert not_assigned.status_code == 404
    mine = await journal.client.get("/v1/cadres/c001/study-shortfall", headers=journal.cadre(1))
    assert mine.json() | {"month": None} == {
        "cadre_id": "c001",
        "month": None,
        "required": 2,
        "completed": 1,
        "minutes": 45,
        "shortfall": 1,
    }
    unit = await journal.client.get(
        "/v1/units/west/study-shortfall", headers=journal.leader("west")
    )
    short = {i["cadre_id"]: i["shortfall"] for i in unit.json()["items"]}
    assert short["c001"] == 1
    assert short["c003"] == 2
    assert len(short) == 6
    hidden = await journal.client.get("/v1/cadres/c001/study-shortfall", headers=journal.cadre(3))
    assert hidden.status_code == 404
    [completed] = await journal.emitted(
        "journal.study_completed", where=lambda e: e["data"]["study_id"] == study_id
    )
    assert completed["data"] == {"study_id": study_id, "party_theory": True, "minutes": 45}


# ------------------------------------------------------------------ authorisation matrix

OK = "2xx"
ROLES = ("author", "colleague", "leader", "other_leader", "county", "org_admin", "junior_admin")
# Rows: an endpoint; columns: ROLES. 404 where the thing is outside what the caller may see.
MATRIX: dict[str, tuple[str | int, ...]] = {
    "GET entry": (OK, 404, OK, 404, OK, OK, OK),
    "PATCH entry": (OK, 404, 403, 404, 403, 403, 403),
    "POST reaction": (403, 403, OK, 403, OK, 403, 403),
    "GET feed of the unit": (OK, OK, OK, 403, OK, OK, OK),
    "GET back-check of the unit": (OK, OK, OK, 403, OK, OK, OK),
    "POST task to the author": (403, 403, OK, 403, OK, OK, 403),
    "GET task": (OK, 404, OK, 404, OK, OK, OK),
    "POST grade of an open task": (403, 404, 409, 404, 409, 409, 403),
    "POST cancel with a reason": (403, 404, 409, 404, 409, 409, 403),
    "POST study to the unit": (403, 403, OK, 403, OK, OK, 403),
    "GET study shortfall of the author": (OK, 404, OK, 404, OK, OK, OK),
}


async def test_the_authorisation_matrix(journal: Journal) -> None:
    author = journal.cadre(0)
    entry = await post_entry(journal, author, "矩阵测试日志")
    leader = journal.leader("east")
    due = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    task_body = {
        "title": "矩阵任务",
        "due_at": due,
        "reward_points": 1,
        "penalty_points": 1,
        "dimension": "learning",
        "cadre_id": "c000",
    }
    task = (await journal.client.post("/v1/tasks", headers=leader, json=task_body)).json()
    task_id = task["tasks"][0]["task_id"]
    cancelled = (await journal.client.post("/v1/tasks", headers=leader, json=task_body)).json()[
        "tasks"
    ][0]["task_id"]
    await journal.client.post(
        f"/v1/tasks/{cancelled}/cancel", headers=leader, json={"reason": "先撤销"}
    )
    headers = {
        "author": author,
        "colleague": journal.cadre(2),
        "leader": leader,
        "other_leader": journal.leader("west"),
        "county": journal.county_leader(),
        "org_admin": journal.admin(),
        "junior_admin": journal.mint.headers("junior", f"/{journal.tenant}", Role.JUNIOR_ADMIN),
    }
    eid = entry["entry_id"]
    calls: dict[str, tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]] = {
        "GET entry": ("GET", f"/v1/entries/{eid}", None, None),
        "PATCH entry": ("PATCH", f"/v1/entries/{eid}", {"text": "改"}, None),
        "POST reaction": (
            "POST",
            f"/v1/entries/{eid}/reactions",
            {"reaction": "like", "reason": "好"},
            None,
        ),
        "GET feed of the unit": ("GET", "/v1/feed", None, {"unit_id": "east"}),
        "GET back-check of the unit": (
            "GET",
            "/v1/back-check",
            None,
            {"unit_id": "east", "q": "矩阵"},
        ),
        "POST task to the author": ("POST", "/v1/tasks", task_body, None),
        "GET task": ("GET", f"/v1/tasks/{task_id}", None, None),
        "POST grade of an open task": (
            "POST",
            f"/v1/tasks/{task_id}/grade",
            {"quality_pct": 50},
            None,
        ),
        "POST cancel with a reason": (
            "POST",
            f"/v1/tasks/{cancelled}/cancel",
            {"reason": "再撤销"},
            None,
        ),
        "POST study to the unit": (
            "POST",
            "/v1/study",
            {"title": "矩阵学习", "unit_id": "east"},
            None,
        ),
        "GET study shortfall of the author": ("GET", "/v1/cadres/c000/study-shortfall", None, None),
    }
    assert set(calls) == set(MATRIX)
    mismatches = []
    for name, expected_row in MATRIX.items():
        method, path, body, params = calls[name]
        for role, expected in zip(ROLES, expected_row, strict=True):
            response = await journal.client.request(
                method, path, headers=headers[role], json=body, params=params
            )
            got: str | int = OK if 200 <= response.status_code < 300 else response.status_code
            if got != expected:
                mismatches.append(f"{name} as {role}: expected {expected}, got {got}")
            if response.status_code >= 400:
                assert "code" in response.json(), response.text
    assert mismatches == []


async def test_a_repeated_upload_with_the_same_idempotency_key_posts_one_entry(
    journal: Journal,
) -> None:
    headers = {**journal.cadre(11), "Idempotency-Key": f"k-{uuid.uuid4()}"}

    async def post() -> httpx.Response:
        return await journal.client.post(
            "/v1/entries",
            headers=headers,
            data={"text": "网络不好，重复提交"},
            files=[("files", ("a.jpg", jpeg(100, 80), "image/jpeg"))],
        )

    first, second = await post(), await post()
    assert first.status_code == second.status_code == 201
    assert first.json()["entry_id"] == second.json()["entry_id"]
    mine = await journal.client.get("/v1/entries", headers=journal.cadre(11))
    assert [i["text"] for i in mine.json()["items"]].count("网络不好，重复提交") == 1


async def test_feeds_refuse_days_outside_what_a_journal_can_hold(journal: Journal) -> None:
    """Found by schemathesis: year 1 at UTC+8 falls into year 0, which PostgreSQL cannot hold."""
    for path in ("/v1/feed", "/v1/entries"):
        response = await journal.client.get(
            path, headers=journal.admin(), params={"from_day": "0001-01-01"}
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    back_check = await journal.client.get(
        "/v1/back-check", headers=journal.admin(), params={"q": "扶贫", "to_day": "0001-01-01"}
    )
    assert back_check.status_code == 422
