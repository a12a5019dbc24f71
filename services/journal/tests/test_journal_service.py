"""The journal on the real servers: entries with real thumbnails, refused uploads that leave
nothing behind, the Chinese back-check, reactions, endorsements, tasks and study, and the
missed-journal and overdue events emitted once across restarts. Each test module has its own
tenant, database, topics, consumer group and blob directory; tokens are minted as the
directory would mint them."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from cadre.journal.adapters.tables import people
from cadre.journal.entrypoints.app import create_app
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

    async def emitted(self, event_type: str, at_least: int = 1) -> list[dict[str, Any]]:
        """The journal's events of this tenant and type on Kafka (distinct ids)."""

        def mine(records: list[Any]) -> list[dict[str, Any]]:
            found: dict[str, dict[str, Any]] = {}
            for record in records:
                headers = header_map(record.headers)
                if headers.get("ce_type") != event_type:
                    continue
                event = decode(record.headers, record.value)
                if event.tenant == self.tenant:
                    found[str(event.id)] = event.model_dump(mode="json")
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
    published = [
        e
        for e in await journal.emitted("journal.entry_posted")
        if e["data"]["entry_id"] == entry["entry_id"]
    ]
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
    revisions = [
        e["data"]["revision"]
        for e in await journal.emitted("journal.entry_posted", at_least=2)
        if e["data"]["entry_id"] == entry["entry_id"]
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
    assert bad.json()["code"] == "bad-cursor"
