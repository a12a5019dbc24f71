"""Scoring as operations run it, as real processes: two instances in one consumer group
agree with one (and with the pure rules), also after one is SIGKILLed; a single instance
killed mid-stream and restarted counts every event exactly once; `scoring replay` rebuilds
a generation with the live digest and the service follows the switch; `scoring what-if`
reports differences without touching anything live."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer

from cadre.devstack.infra import Infra, create_databases, create_topics
from cadre.devstack.ports import free_port
from cadre.devstack.processes import kill_process, spawn, stop_process
from cadre.devstack.synthetic import SyntheticTenant
from cadre.devstack.testing import eventually, publish_events, unique_tenant
from cadre.events.catalogue import AnyEvent
from cadre.events.db import create_engine, migrate_async, session_factory
from cadre.events.wire import encode
from cadre.scoring.adapters import queries
from cadre.scoring.adapters.generations import live_generation
from cadre.scoring.adapters.tables import facts, generations, members
from cadre.scoring.domain.digest import digest_of_events
from cadre.scoring.domain.facts import fold
from cadre.scoring.domain.ruleset import default_ruleset

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass
class Setup:
    tenant: str
    synthetic: SyntheticTenant
    env: dict[str, str]
    database_url: str
    bootstrap: str
    topics: dict[str, str]
    logs: Path

    @property
    def expected_digest(self) -> str:
        return digest_of_events(self.synthetic.events, default_ruleset())

    @property
    def expected_facts(self) -> int:
        state = fold({}, self.synthetic.events)
        return sum(len(group) for group in state.values())

    def instance(self, name: str) -> subprocess.Popen[bytes]:
        env = {**self.env, "CADRE_SCORING_HTTP_PORT": str(free_port())}
        return spawn([sys.executable, "-m", "cadre.scoring"], self.logs / f"{name}.log", env=env)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cadre.scoring.entrypoints.cli", *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    async def publish(self, events: list[AnyEvent]) -> None:
        await publish_events(self.bootstrap, events, lambda e: self.topics[e.source])

    async def digest(self, generation: int | None = None) -> str:
        engine = create_engine(self.database_url)
        try:
            sessions = session_factory(engine)
            async with sessions() as session:
                chosen = generation or await live_generation(session)
            if chosen is None:
                return ""
            return await queries.generation_digest(sessions, chosen, self.tenant)
        finally:
            await engine.dispose()

    async def scalar(self, query: sa.Select[Any]) -> int:
        engine = create_engine(self.database_url)
        try:
            async with engine.connect() as connection:
                return int((await connection.execute(query)).scalar_one())
        finally:
            await engine.dispose()

    async def fact_rows(self) -> int:
        return await self.scalar(
            sa.select(sa.func.count()).select_from(facts).where(facts.c.tenant == self.tenant)
        )

    async def member_rows(self) -> int:
        return await self.scalar(
            sa.select(sa.func.count()).select_from(members).where(members.c.tenant == self.tenant)
        )

    async def processed(self, consumer: str) -> int:
        return await self.scalar(
            sa.select(sa.func.count())
            .select_from(sa.table("processed_events", sa.column("consumer")))
            .where(sa.column("consumer") == consumer)
        )


@pytest_asyncio.fixture
async def setup(infra: Infra, kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Setup]:
    database = f"scoring_ops_{uuid.uuid4().hex[:8]}"
    await create_databases(infra.pg_url("postgres", "postgresql"), [database])
    url = infra.pg_url(database)
    await migrate_async("cadre.scoring.adapters.migrations", url)
    suffix = uuid.uuid4().hex[:8]
    topics = {
        s: f"scoring-ops-{s}.{suffix}.v1" for s in ("directory", "attendance", "journal", "scoring")
    }
    await create_topics(
        kafka_bootstrap,
        [t for name in topics.values() for t in (name, name + ".dlq")],
        partitions=4,
    )
    tenant = unique_tenant()
    env = {
        "CADRE_SCORING_DATABASE_URL": url,
        "CADRE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CADRE_REDIS_URL": infra.redis_url,
        "CADRE_SCORING_TOPICS": json.dumps(list(topics.values())),
        "CADRE_SCORING_GROUP_PREFIX": f"scoring-ops-{suffix}",
        "CADRE_SCORING_POINTER_POLL_S": "0.5",
        "CADRE_SCORING_MAX_RECORDS": "100",
        "CADRE_SCORING_TODAY": "2026-11-01",
        "CADRE_LOG_LEVEL": "WARNING",
    }
    synthetic = SyntheticTenant(tenant, cadres=40, days=30, start=date(2026, 10, 2), seed=7)
    yield Setup(tenant, synthetic, env, url, kafka_bootstrap, topics, tmp_path)


async def _digest_is(setup: Setup, expected: str, generation: int | None = None) -> bool:
    return await setup.digest(generation) == expected


async def test_two_instances_agree_with_one_also_after_one_is_killed(setup: Setup) -> None:
    await setup.publish(setup.synthetic.directory())
    first, second = setup.instance("a"), setup.instance("b")
    try:
        activity = setup.synthetic.activity()
        # Half now, the rest after the kill: killed mid-stream by construction. With all
        # of it published at once, both could finish between two looks (seen in CI).
        half = len(activity) // 2
        await setup.publish(activity[:half])
        await eventually(
            lambda: _at_least(setup, setup.expected_facts // 3),
            timeout_s=90,
            message="both instances to be folding",
        )
        kill_process(second)  # SIGKILL: its partitions move to the survivor
        assert await setup.fact_rows() < setup.expected_facts, "killed mid-stream"
        await setup.publish(activity[half:])
        await eventually(
            lambda: _digest_is(setup, setup.expected_digest),
            timeout_s=120,
            message="the survivor to finish with the single-instance digest",
        )
        assert await setup.fact_rows() == setup.expected_facts
        assert first.poll() is None, "the survivor is still running"
    finally:
        kill_process(second)
        stop_process(first)
    logs = (setup.logs / "a.log").read_text() + (setup.logs / "b.log").read_text()
    assert "Traceback" not in logs, logs[-3000:]


async def test_a_single_instance_killed_mid_stream_counts_every_event_once(setup: Setup) -> None:
    events = setup.synthetic.events
    half = len(events) // 2  # the rest after the kill: killed mid-stream by construction
    await setup.publish(events[:half])
    instance = setup.instance("first")
    try:
        await eventually(
            lambda: _at_least(setup, setup.expected_facts // 4),
            timeout_s=90,
            message="the instance to be folding",
        )
    finally:
        kill_process(instance)
    assert await setup.fact_rows() < setup.expected_facts, "killed mid-stream"
    await setup.publish(events[half:])
    restarted = setup.instance("second")
    try:
        await eventually(
            lambda: _digest_is(setup, setup.expected_digest),
            timeout_s=120,
            message="the restarted instance to finish",
        )
    finally:
        stop_process(restarted)
    assert await setup.fact_rows() == setup.expected_facts
    group = f"{setup.env['CADRE_SCORING_GROUP_PREFIX']}.g1"
    # Fact rows are keyed by event id, so only the directory's events keep a dedup record;
    # the fact count above is what proves each event was counted once.
    directory_events = {e.id for e in events if e.source == "directory"}
    assert await setup.processed(group) == len(directory_events)


async def test_replay_rebuilds_the_live_digest_and_the_service_follows_the_switch(
    setup: Setup,
) -> None:
    synthetic = setup.synthetic
    await setup.publish(synthetic.events)
    service = setup.instance("service")
    try:
        await eventually(
            lambda: _digest_is(setup, setup.expected_digest, 1),
            timeout_s=120,
            message="the live projection",
        )
        replay = setup.cli("replay", "--keep", "--workers", "2")  # split across 2 processes
        assert replay.returncode == 0, replay.stderr
        assert "with 2 worker(s)" in replay.stderr
        replayed_digest = replay.stdout.strip().splitlines()[-1]
        assert replayed_digest == await setup.digest(1), "a replay gives the live digest"
        assert "generation 2 is live" in replay.stderr
        assert "events/s" in replay.stderr
        statuses = await _statuses(setup)
        assert statuses == {1: "retired", 2: "live"}
        # Loaded bare, indexed before the switch: the service writes into them next, and
        # the facts key is what makes a redelivered event count once.
        assert await _partition_indexes(setup, 2) == {
            "facts_g2": {"facts_g2_key", "facts_g2_by_cadre", "facts_g2_by_day"},
            "contributions_g2": {"contributions_g2_key", "contributions_g2_by_day"},
        }

        late = SyntheticTenant(setup.tenant, cadres=3, days=1, start=date(2026, 10, 31), seed=99)
        await setup.publish(late.activity())  # after the switch: the service folds into gen 2
        everything = [*synthetic.events, *late.activity()]
        expected = digest_of_events(everything, default_ruleset())
        await eventually(
            lambda: _digest_is(setup, expected, 2),
            timeout_s=60,
            message="the service to continue in the new generation",
        )
        assert await setup.digest(1) == replayed_digest, "--keep leaves the old one untouched"
        digest = setup.cli("digest", "--tenant", setup.tenant)
        assert digest.returncode == 0, digest.stderr
        assert digest.stdout.strip() == expected
    finally:
        stop_process(service)


async def test_a_replay_gives_the_same_digest_when_events_are_not_keyed_by_their_cadre(
    setup: Setup,
) -> None:
    """Each replay worker derives the cadres whose events it alone folded from memory. Keyed
    by event id instead of subject, one cadre's events spread over both workers' partitions:
    those cadres must go through the table and come out the same."""
    producer = AIOKafkaProducer(bootstrap_servers=setup.bootstrap, acks="all")
    await producer.start()
    try:
        for event in setup.synthetic.events:
            record = encode(event)
            key = record.key if event.source == "directory" else str(event.id).encode()
            await producer.send(
                setup.topics[event.source], key=key, value=record.value, headers=record.headers
            )
        await producer.flush()
    finally:
        await producer.stop()

    replay = setup.cli("replay", "--workers", "2", "--json")
    assert replay.returncode == 0, replay.stderr
    result = json.loads(replay.stdout.strip().splitlines()[-1])
    assert result["shared_cadres"] > 0, "cadres were folded by both workers"
    assert "derived from the table" in replay.stderr
    assert result["digest"] == setup.expected_digest
    assert await setup.fact_rows() == setup.expected_facts


async def test_a_replay_whose_worker_is_killed_leaves_nothing_behind_and_can_be_rerun(
    setup: Setup,
) -> None:
    await setup.publish(setup.synthetic.events)
    # Two records a batch: the fold takes long enough to be caught in the middle.
    env = {**setup.env, "CADRE_SCORING_REPLAY_MAX_RECORDS": "2"}
    log = setup.logs / "killed-replay.log"
    command = [sys.executable, "-m", "cadre.scoring.entrypoints.cli", "replay", "--workers", "2"]
    replay = spawn(command, log, env=env)
    try:
        # A replay holds facts in memory until it derives; the directory's rows show the fold.
        await eventually(
            lambda: _members_at_least(setup, 1), timeout_s=60, interval_s=0.02, message="the fold"
        )
        workers = _replay_workers(replay.pid)
        assert len(workers) == 2, "both worker processes are running"
        os.kill(workers[0], signal.SIGKILL)
        await asyncio.to_thread(replay.wait, 120)
    finally:
        kill_process(replay)  # only if it is still there
    message = log.read_text()
    assert replay.returncode == 1, message
    assert "generation 1 failed" in message
    assert "live one is unchanged" in message
    assert "Traceback" not in message
    assert await _statuses(setup) == {1: "failed"}
    assert await setup.fact_rows() == 0, "the abandoned generation keeps no rows"
    assert await setup.member_rows() == 0
    prefix = setup.env["CADRE_SCORING_GROUP_PREFIX"]
    assert await setup.processed(f"{prefix}.g1") == 0, "nor dedup records"

    # Rerun in one process: the other way a replay runs (no coordinator, no pipes).
    rerun = setup.cli("replay", "--workers", "1", "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert "generation 2 is live (was None)" in rerun.stderr
    result = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert result["workers"] == 1
    assert result["digest"] == setup.expected_digest
    assert await setup.fact_rows() == setup.expected_facts
    assert await _statuses(setup) == {1: "failed", 2: "live"}


def _replay_workers(parent: int) -> list[int]:
    """The replay's pool processes (not multiprocessing's resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        parent_pid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if parent_pid == parent and "spawn_main" in command and "resource_tracker" not in command:
            found.append(int(entry.name))
    return sorted(found)


async def test_what_if_reports_differences_and_changes_nothing_live(
    setup: Setup, tmp_path: Path
) -> None:
    await setup.publish(setup.synthetic.events)
    service = setup.instance("service")
    try:
        await eventually(
            lambda: _digest_is(setup, setup.expected_digest),
            timeout_s=120,
            message="the live projection",
        )
    finally:
        stop_process(service)
    draft = tmp_path / "draft.toml"
    draft.write_text('version = "draft-1"\n[points]\nday_absent = -30.0\njournal_missed = -20.0\n')
    result = setup.cli(
        "what-if",
        "--ruleset",
        str(draft),
        "--tenant",
        setup.tenant,
        "--period",
        "2026-10",
        "--as-of",
        "2026-11-01",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    [report] = json.loads(result.stdout)
    assert report["tenant"] == setup.tenant
    assert report["ranking_changes"], "harsher penalties reorder the units"
    change = report["ranking_changes"][0]
    assert set(change) == {"unit_id", "cadre_id", "rank", "composite"}
    assert await setup.digest() == setup.expected_digest, "nothing live changed"
    assert await _statuses(setup) == {1: "live"}

    broken = tmp_path / "broken.toml"
    broken.write_text('version = "x"\n[weights]\npolitics = -1\n')
    refused = setup.cli("what-if", "--ruleset", str(broken))
    assert refused.returncode == 2
    assert str(broken) in refused.stderr.replace("\n", "")


async def _partition_indexes(setup: Setup, generation: int) -> dict[str, set[str]]:
    engine = create_engine(setup.database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                sa.text(
                    "SELECT tablename, indexname FROM pg_indexes WHERE tablename"
                    " IN (:facts, :contributions)"
                ),
                {"facts": f"facts_g{generation}", "contributions": f"contributions_g{generation}"},
            )
            found: dict[str, set[str]] = {}
            for table, index in rows:
                found.setdefault(str(table), set()).add(str(index))
            return found
    finally:
        await engine.dispose()


async def _statuses(setup: Setup) -> dict[int, str]:
    engine = create_engine(setup.database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                sa.select(generations.c.generation, generations.c.status)
            )
            return {int(g): str(s) for g, s in rows}
    finally:
        await engine.dispose()


async def _at_least(setup: Setup, rows: int) -> bool:
    return await setup.fact_rows() >= rows


async def _members_at_least(setup: Setup, rows: int) -> bool:
    return await setup.member_rows() >= rows
