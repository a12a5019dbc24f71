"""Journal feed and back-check benchmark: p50/p95/p99 latency of the feed and of the Chinese
keyword back-check, through the HTTP API, against a table of generated entries.

    uv run python -m bench.journal [--entries 1000000] [--requests 200]

It starts its own PostgreSQL, Kafka and Redis (ports 29092, 25432, 26379, data under
.stack-bench/), loads the entries with COPY (each indexed with the same Chinese tokens the
service writes), then times each query shape through the FastAPI app in-process, with
tokens minted for a cadre, a township, a county and the organisation department. Writes
bench/results/journal.json.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import random
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench.stack import BENCH_STACK, bench_infra, say, write_result  # isort: skip

import asyncpg
import httpx

from bench.machine import describe
from cadre.devstack.infra import Infra, create_databases
from cadre.devstack.testing import TokenMint
from cadre.events.db import migrate_async
from cadre.events.vocabulary import LeaderLevel, Role
from cadre.journal.domain.search import document_tokens
from cadre.journal.entrypoints.app import create_app
from cadre.journal.settings import JournalSettings

TENANT = "bench"
COUNTIES, TOWNS, VILLAGES = 10, 10, 10  # 1,000 villages under one city
CADRES_PER_VILLAGE = 20  # 20,000 cadres
DAYS = 365
WORDS = [
    "走访",
    "脱贫户",
    "产业扶贫",
    "合作社",
    "村民小组",
    "会议",
    "传达",
    "学习",
    "党的二十大",
    "精神",
    "人居环境",
    "整治",
    "河道",
    "清理",
    "防汛",
    "值班",
    "安全生产",
    "检查",
    "矛盾纠纷",
    "调解",
    "土地流转",
    "协调",
    "医保",
    "缴费",
    "宣传",
    "疫苗",
    "接种",
    "动员",
    "护林",
    "巡查",
    "危房改造",
    "验收",
    "低保",
    "评议",
    "乡村振兴",
    "项目",
    "申报",
    "春耕",
    "备耕",
    "技术",
    "培训",
    "电商",
    "直播",
    "带货",
    "农产品",
    "销售",
    "易地搬迁",
    "后续扶持",
    "就业",
    "帮扶",
    "返乡",
    "创业",
    "政策",
    "解读",
    "党员",
    "活动",
    "主题党日",
    "志愿服务",
    "垃圾分类",
    "入户",
    "核实",
    "信息",
    "台账",
    "更新",
    "群众",
    "来访",
    "接待",
    "民生",
    "实事",
    "道路",
    "硬化",
    "饮水",
    "安全",
    "排查",
    "隐患",
    "整改",
    "落实",
]
TAGS = ("ideological_report", "study_notes", "publicity", "coordination_success", "")
RARE = "蜂蜜深加工"  # planted in 1 entry in 20,000


def village_path(v: int) -> tuple[str, str]:
    county, town, _village = v // (TOWNS * VILLAGES), (v // VILLAGES) % TOWNS, v % VILLAGES
    return f"v{v}", f"/{TENANT}/c{county}/t{county}-{town}/v{v}"


def entry_rows(count: int, seed: int = 7) -> Any:
    rnd = random.Random(seed)  # noqa: S311 - test data
    cadres = COUNTIES * TOWNS * VILLAGES * CADRES_PER_VILLAGE
    start = datetime(2025, 11, 23, tzinfo=UTC)
    step = timedelta(days=DAYS) / count
    for i in range(count):
        cadre = rnd.randrange(cadres)
        unit_id, path = village_path(cadre // CADRES_PER_VILLAGE)
        words = rnd.sample(WORDS, rnd.randint(8, 20))
        if i % 20_000 == 0:
            words.insert(3, RARE)
        text = "，".join("".join(words[j : j + 3]) for j in range(0, len(words), 3)) + "。"
        tag = rnd.choice(TAGS)
        tags = [tag] if tag else []
        posted = start + step * i
        tokens = document_tokens(text + " " + " ".join(tags))
        yield (
            TENANT,
            f"e{i:08d}",
            f"k{cadre:05d}",
            unit_id,
            path,
            (posted + timedelta(hours=8)).date().isoformat(),
            posted.isoformat(),
            1,
            text,
            "{" + ",".join(tags) + "}",
            "t" if i % 5 == 0 else "f",
            " ".join(f"'{t}'" for t in tokens),
        )


COLUMNS = [
    "tenant",
    "entry_id",
    "cadre_id",
    "unit_id",
    "unit_path",
    "day",
    "posted_at",
    "revision",
    "text",
    "tags",
    "has_attachment",
    "search",
]


async def load(url: str, count: int) -> float:
    """COPY the entries in, with the indexes dropped and rebuilt (as a bulk load would)."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        indexes = await connection.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'entries'"
            " AND indexname NOT LIKE '%pkey'"
        )
        for row in indexes:
            await connection.execute(f'DROP INDEX "{row["indexname"]}"')
        began = time.perf_counter()
        batch = 100_000
        rows = entry_rows(count)
        done = 0
        while done < count:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            for _ in range(min(batch, count - done)):
                writer.writerow(next(rows))
            done += min(batch, count - done)
            await connection.copy_to_table(
                "entries",
                source=io.BytesIO(buffer.getvalue().encode()),
                columns=COLUMNS,
                format="csv",
            )
            say(f"loaded {done:,}/{count:,} entries")
        await connection.execute("SET maintenance_work_mem = '1GB'")
        for row in indexes:
            say(f"building {row['indexname']}")
            await connection.execute(row["indexdef"])
        await connection.execute("VACUUM ANALYZE entries")
        return time.perf_counter() - began
    finally:
        await connection.close()


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {
        "p50_ms": at(0.50),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
    }


async def measure(infra: Infra, count: int, requests: int) -> dict[str, Any]:
    database = f"journal_bench_{uuid.uuid4().hex[:6]}"
    await create_databases(infra.pg_url("postgres", "postgresql"), [database])
    url = infra.pg_url(database)
    await migrate_async("cadre.journal.adapters.migrations", url)
    say(f"generating and loading {count:,} entries")
    load_s = await load(url, count)
    say(f"loaded and indexed in {load_s:.0f}s")
    settings = JournalSettings(
        database_url=url,
        kafka_bootstrap=infra.kafka_bootstrap,
        redis_url=infra.redis_url,
        relay_enabled=False,
        blob_dir=BENCH_STACK / "blobs",
        consumer_group=f"bench-{uuid.uuid4().hex[:6]}",
    )
    app = create_app(settings)
    mint = TokenMint(TENANT)
    rnd = random.Random(3)  # noqa: S311
    async with app.router.lifespan_context(app):
        app.state.verifier = mint.verifier()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b")

        def cadre() -> dict[str, str]:
            n = rnd.randrange(COUNTIES * TOWNS * VILLAGES * CADRES_PER_VILLAGE)
            return mint.headers(f"k{n:05d}", village_path(n // CADRES_PER_VILLAGE)[1], Role.CADRE)

        def leader(depth: int) -> dict[str, str]:
            v = rnd.randrange(COUNTIES * TOWNS * VILLAGES)
            path = "/".join(village_path(v)[1].split("/")[: 2 + depth])
            level = (LeaderLevel.CITY, LeaderLevel.COUNTY, LeaderLevel.TOWNSHIP)[depth]
            return mint.headers(f"L{depth}-{v}", path, Role.LEADER, level=level)

        def admin() -> dict[str, str]:
            return mint.headers("org", f"/{TENANT}", Role.ORG_ADMIN)

        shapes: dict[str, tuple[str, Any, dict[str, Any]]] = {
            "feed: a cadre's own entries": ("/v1/entries", cadre, {"limit": 20}),
            "feed: township leader's subtree (1% of the city)": (
                "/v1/feed",
                lambda: leader(2),
                {"limit": 20},
            ),
            "feed: county leader's subtree (10% of the city)": (
                "/v1/feed",
                lambda: leader(1),
                {"limit": 20},
            ),
            "feed: whole city, tag and attachment filter": (
                "/v1/feed",
                admin,
                {"limit": 20, "tag": "publicity", "has_attachment": "true"},
            ),
            "feed: county subtree, one month": (
                "/v1/feed",
                lambda: leader(1),
                {"limit": 20, "from_day": "2026-03-01", "to_day": "2026-03-31"},
            ),
            "back-check: common word 产业扶贫, county subtree": (
                "/v1/back-check",
                lambda: leader(1),
                {"q": "产业扶贫", "limit": 20},
            ),
            "back-check: two keywords 防汛 值班, township subtree": (
                "/v1/back-check",
                lambda: leader(2),
                {"q": "防汛 值班", "limit": 20},
            ),
            f"back-check: rare phrase {RARE}, whole city": (
                "/v1/back-check",
                admin,
                {"q": RARE, "limit": 20},
            ),
            "back-check: common word 调解, whole city": (
                "/v1/back-check",
                admin,
                {"q": "调解", "limit": 20},
            ),
        }
        results: dict[str, Any] = {}
        for name, (path, headers_of, params) in shapes.items():
            for _ in range(10):  # warm the caches and the token verifier
                await client.get(path, headers=headers_of(), params=params)
            samples = []
            found = 0
            for _ in range(requests):
                headers = headers_of()
                began = time.perf_counter()
                response = await client.get(path, headers=headers, params=params)
                samples.append(time.perf_counter() - began)
                assert response.status_code == 200, response.text
                found += len(response.json()["items"])
            results[name] = {**percentiles(samples), "mean_items": round(found / requests, 1)}
            say(f"{name}: {results[name]}")
        await client.aclose()
    return {
        "benchmark": "journal feed and back-check",
        "machine": describe(),
        "measured_on": date.today().isoformat(),
        "entries": count,
        "cadres": COUNTIES * TOWNS * VILLAGES * CADRES_PER_VILLAGE,
        "requests_per_shape": requests,
        "load_and_index_s": round(load_s, 1),
        "latency": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per shape")
    args = parser.parse_args()
    with bench_infra() as infra:
        result = asyncio.run(measure(infra, args.entries, args.requests))
    write_result("journal", result)


if __name__ == "__main__":
    main()
