"""`scoring replay`: rebuild the projection from the event log into a new generation, muted
(no lights, no notifications), and switch the read pointer once it has caught up.

The work is split across `workers` processes, because one Python process saturates a core
long before Kafka or PostgreSQL do. It runs in two phases:
1. fold: each worker reads its share of the partitions (every `workers`-th one) from the
   earliest offset under the generation's one consumer group, and holds the facts it
   folds in memory, per cadre. A redelivered event lands on its first copy's partition,
   so each worker drops repeats by itself.
2. derive: each worker writes the facts of its cadres and the contributions derived from
   them. Producers key events by their subject, so one cadre's events share a partition
   number on every topic and one worker holds all of its facts. A cadre whose facts
   several workers hold is the exception the coordinator looks for: those facts go to
   the table first, and one worker derives the cadre from there.
The generation's partitions of facts and contributions are loaded bare; the coordinator
builds their keys and indexes once the workers are done (the facts partition's, its key
among them, before anything is released when some cadre is shared: that cadre's facts go
in with ON CONFLICT, which needs the key), while it digests the new generation: the
digest is of exactly what was replayed. Then it switches the pointer. A replay that
fails leaves no rows behind: its generation is marked failed and emptied."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import queue
import resource
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cadre.events.db import create_engine, migrate_async, session_factory
from cadre.events.logging import configure_logging
from cadre.events.runtime import tune_garbage_collector
from cadre.scoring.adapters import queries
from cadre.scoring.adapters.generations import (
    abandon_generation,
    create_generation,
    create_partitions,
    drop_generation,
    index_loaded_partition,
    switch_to,
    without_stalling_reads,
)
from cadre.scoring.adapters.projection import CadreKey, ScoringProjection
from cadre.scoring.adapters.rankings import RankingCache
from cadre.scoring.adapters.rulesets import RulesetBook
from cadre.scoring.adapters.tables import PARTITIONED_TABLES
from cadre.scoring.entrypoints.jobs import generation_loop
from cadre.scoring.settings import ScoringSettings

MIGRATIONS = "cadre.scoring.adapters.migrations"
FOLD, DERIVE = "fold", "derive"
# phase, done so far, total known so far (events while folding, cadres while deriving)
ProgressFn = Callable[[str, int, int], None]


@asynccontextmanager
async def open_database(
    settings: ScoringSettings, *, migrate: bool = True
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    if migrate:
        await migrate_async(MIGRATIONS, settings.effective_database_url)
    engine = create_engine(settings.effective_database_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


@dataclass
class ReplayResult:
    generation: int
    previous: int | None
    events: int
    seconds: float
    digest: str
    workers: int = 1
    # Where the time went: reading and folding the log, deriving contributions, and then
    # the digest of the new generation and its indexes (side by side), and the switch.
    fold_s: float = 0.0
    derive_s: float = 0.0
    digest_s: float = 0.0
    # Within `digest_s`, building the new partitions' keys and indexes.
    index_s: float = 0.0
    # The sum of every replay process's own peak, coordinator included.
    peak_rss_mb: float = 0.0
    # Cadres whose events several workers folded (events keyed by something other than
    # their subject): derived from the table instead of from memory, which is slower.
    shared_cadres: int = 0


class ReplayFailed(RuntimeError):
    """A replay that could not finish (a worker died, the database went away): its
    generation was abandoned, and nothing live changed."""

    def __init__(self, generation: int, cause: Exception) -> None:
        super().__init__(
            f"the replay into generation {generation} failed: {cause or type(cause).__name__}."
            " That generation was abandoned and the live one is unchanged; run the replay again."
        )
        self.generation = generation


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


class ShareCoordinator(Protocol):
    """What one share needs from the others between its phases."""

    async def shared(self, events: int, cadres: list[CadreKey]) -> list[CadreKey]:
        """Report what this share folded; returns those of its cadres that other shares
        hold facts of too."""

    async def stored_share(self) -> list[CadreKey]:
        """Once every share has released its shared cadres: those this share derives."""


class _Alone:
    """The coordinator of a replay done in one process: nothing is shared."""

    async def shared(self, events: int, cadres: list[CadreKey]) -> list[CadreKey]:
        return []

    async def stored_share(self) -> list[CadreKey]:
        return []


# ---- one share of the work (in a worker process, or in this one when workers == 1)


async def replay_share(
    settings: ScoringSettings,
    generation: int,
    share: tuple[int, int],
    coordinator: ShareCoordinator,
    on_fold: Callable[[int, int], None],
    on_derive: Callable[[int, int], None],
) -> tuple[int, float]:
    """Fold this share's partitions up to the end of the log as it is now, holding the facts
    in memory (`on_fold(done, remaining)` every 0.2 s); release the facts of cadres
    another share holds facts of too; then derive this share's cadres
    (`on_derive(done, total)`). Returns the number of events folded and the seconds spent
    deriving."""
    projection = ScoringProjection(
        generation, RulesetBook.load(settings.rulesets_dir), None, replaying=True
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)  # dead letters
    await producer.start()
    done = 0
    # The held facts are millions of objects that live until they are derived: each pass
    # of the cyclic collector rescanned all of them (fold 14.3 s with it off, 17.6 s on,
    # at 2,000 cadres x 90 days). What the replay holds forms no cycles, and the little
    # cyclic garbage of a run is collected after it.
    gc.disable()
    try:
        async with open_database(settings, migrate=False) as sessions:
            loop, _ = generation_loop(
                settings, sessions, producer, projection, assign_all=True, share=share
            )
            await loop.start()
            try:
                remaining = await loop.lag()
                on_fold(done, remaining)
                reported = time.monotonic()
                while True:
                    fetched = await loop.poll_once(timeout_ms=500)
                    done += fetched
                    remaining = max(0, remaining - fetched)
                    # At the end of the log as it was, ask Kafka rather than poll once more:
                    # a fetch at the end waits out the broker's fetch_max_wait (500 ms).
                    if fetched == 0 or remaining == 0:
                        remaining = await loop.lag()
                        if remaining == 0:
                            break
                    # Five reports a second are plenty: one per batch (thousands) woke the
                    # progress queue's feeder thread each time, beside the fold.
                    if time.monotonic() - reported >= 0.2:
                        on_fold(done, remaining)
                        reported = time.monotonic()
            finally:
                await loop.stop()
            on_fold(done, 0)

            shared = await coordinator.shared(done, sorted(projection.held))
            async with sessions() as session, session.begin():
                await projection.release(session, shared)
            stored = await coordinator.stored_share()
            deriving = time.perf_counter()
            held = len(projection.held)
            total = held + len(stored)
            on_derive(0, total)
            await projection.derive_held(sessions, on_progress=lambda n: on_derive(n, total))
            await projection.derive_stored(
                sessions, stored, on_progress=lambda n: on_derive(held + n, total)
            )
            derive_s = time.perf_counter() - deriving
    finally:
        gc.enable()
        await producer.stop()
    return done, derive_s


# ---- the worker processes: one per share, each talking to the coordinator over a pipe


def _worker_main(
    settings: ScoringSettings,
    generation: int,
    share: tuple[int, int],
    channel: Connection,
    progress: Queue[tuple[str, int, int, int]],
) -> None:
    configure_logging("scoring-replay", "WARNING")
    tune_garbage_collector()
    index = share[0]

    def report(phase: str) -> Callable[[int, int], None]:
        return lambda done, total: progress.put((phase, index, done, total))

    try:
        events, _ = asyncio.run(  # the coordinator times the phases across all workers
            replay_share(
                settings,
                generation,
                share,
                _PipeCoordinator(channel),
                lambda done, remaining: report(FOLD)(done, done + remaining),
                report(DERIVE),
            )
        )
    except BaseException as exc:
        channel.send(("failed", f"{type(exc).__name__}: {exc}"))
        raise SystemExit(1) from None
    channel.send(("derived", events, peak_rss_mb()))


class _PipeCoordinator:
    """A worker's side of the conversation `_run_in_workers` holds with each worker."""

    def __init__(self, channel: Connection) -> None:
        self.channel = channel

    async def shared(self, events: int, cadres: list[CadreKey]) -> list[CadreKey]:
        self.channel.send(("folded", events, cadres))
        shared: list[CadreKey] = await asyncio.to_thread(self.channel.recv)
        return shared

    async def stored_share(self) -> list[CadreKey]:
        self.channel.send(("released",))
        stored: list[CadreKey] = await asyncio.to_thread(self.channel.recv)
        return stored


class _ProgressBoard:
    """Sums the workers' progress per phase for one `ProgressFn`."""

    def __init__(self, on_progress: ProgressFn | None) -> None:
        self.on_progress = on_progress
        self.shares: dict[tuple[str, int], tuple[int, int]] = {}

    def update(self, phase: str, index: int, done: int, total: int) -> None:
        self.shares[(phase, index)] = (done, total)
        if self.on_progress is not None:
            mine = [v for (p, _), v in self.shares.items() if p == phase]
            self.on_progress(phase, sum(d for d, _ in mine), sum(t for _, t in mine))


async def _relay_progress(
    progress: Queue[tuple[str, int, int, int]], board: _ProgressBoard
) -> None:
    while True:
        try:
            item = await asyncio.to_thread(progress.get, True, 0.2)
        except queue.Empty:
            continue
        board.update(*item)


async def _receive(channel: Connection, expected: str) -> tuple[Any, ...]:
    """The worker's next message, which must be `expected`; a worker that failed or died
    (its end of the pipe closed) fails the replay."""
    try:
        message: tuple[Any, ...] = await asyncio.to_thread(channel.recv)
    except EOFError:
        raise RuntimeError("a replay worker process died") from None
    if message[0] == "failed":
        raise RuntimeError(f"a replay worker failed: {message[1]}")
    if message[0] != expected:
        raise RuntimeError(f"a replay worker said {message[0]!r}, not {expected!r}")
    return message


async def _run_in_workers(
    settings: ScoringSettings,
    generation: int,
    workers: int,
    board: _ProgressBoard,
    before_release: Callable[[], Awaitable[None]],
) -> tuple[int, float, float, float, int]:
    """Both phases across `workers` processes; returns (events, fold s, derive s, peak RSS
    of the workers summed, shared cadres). A cadre whose facts only one worker folded
    (every cadre, when producers key events by their subject, as ours do) is derived by
    that worker from memory; the facts of a cadre several workers folded are written to
    the table first (after `before_release`), and one worker derives it from there."""
    context = multiprocessing.get_context("spawn")  # no inherited event loop or sockets
    progress: Queue[tuple[str, int, int, int]] = context.Queue()
    relay = asyncio.create_task(_relay_progress(progress, board))
    started = time.perf_counter()
    channels: list[Connection] = []
    processes: list[BaseProcess] = []
    try:
        for index in range(workers):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_worker_main,
                args=(settings, generation, (index, workers), theirs, progress),
                name=f"scoring-replay-{index}",
            )
            process.start()
            theirs.close()  # so that a worker's death closes the pipe and ends our recv
            channels.append(ours)
            processes.append(process)
        folded = await asyncio.gather(*(_receive(c, "folded") for c in channels))
        holders = Counter(key for _, _, cadres in folded for key in cadres)
        shared = sorted(key for key, count in holders.items() if count > 1)
        if shared:
            await before_release()
        for channel, (_, _, cadres) in zip(channels, folded, strict=True):
            channel.send(sorted(set(cadres) & set(shared)))
        await asyncio.gather(*(_receive(c, "released") for c in channels))
        fold_s = time.perf_counter() - started
        for index, channel in enumerate(channels):
            channel.send(shared[index::workers])
        derived = await asyncio.gather(*(_receive(c, "derived") for c in channels))
        derive_s = time.perf_counter() - started - fold_s
    finally:
        for worker in processes:
            if worker.is_alive():
                worker.kill()  # a failed replay: the others' work is abandoned anyway
            await asyncio.to_thread(worker.join)
        relay.cancel()
        progress.close()
    events = sum(message[1] for message in derived)
    return events, fold_s, derive_s, sum(message[2] for message in derived), len(shared)


async def _run_here(
    settings: ScoringSettings, generation: int, board: _ProgressBoard
) -> tuple[int, float, float]:
    started = time.perf_counter()
    events, derive_s = await replay_share(
        settings,
        generation,
        (0, 1),
        _Alone(),
        lambda done, remaining: board.update(FOLD, 0, done, done + remaining),
        lambda done, total: board.update(DERIVE, 0, done, total),
    )
    return events, time.perf_counter() - started - derive_s, derive_s


async def replay(
    settings: ScoringSettings,
    *,
    keep: bool,
    workers: int = 1,
    on_progress: ProgressFn | None = None,
) -> ReplayResult:
    if workers < 1:
        raise ValueError("a replay needs at least one worker")
    RulesetBook.load(settings.rulesets_dir)  # a broken ruleset stops us before any work
    tune_garbage_collector()
    started = time.perf_counter()
    board = _ProgressBoard(on_progress)
    redis = Redis.from_url(settings.redis_url)
    try:
        async with open_database(settings) as sessions:
            async with sessions() as session, session.begin():
                generation = await create_generation(session, settings.group_prefix)

            async def index(table: str) -> None:
                async with sessions() as session, session.begin():
                    await index_loaded_partition(session, table, generation)

            try:
                await without_stalling_reads(
                    sessions, lambda session: create_partitions(session, generation, indexed=False)
                )
                if workers == 1:
                    events, fold_s, derive_s = await _run_here(settings, generation, board)
                    workers_peak, shared = 0.0, 0
                else:
                    events, fold_s, derive_s, workers_peak, shared = await _run_in_workers(
                        settings, generation, workers, board, lambda: index("facts")
                    )
                indexing = time.perf_counter()

                async def build_indexes() -> float:
                    # Both tables at once, on connections of their own.
                    await asyncio.gather(*(index(table.name) for table in PARTITIONED_TABLES))
                    return time.perf_counter() - indexing

                async def take_digest() -> str:
                    return await queries.generation_digest(
                        sessions, generation, parallel_workers=False
                    )

                # The digest needs no index, and nothing but this replay writes the new
                # generation before the switch: the two overlap (PostgreSQL sorts for both).
                index_s, fingerprint = await asyncio.gather(build_indexes(), take_digest())
            except BaseException as exc:
                await without_stalling_reads(
                    sessions, lambda session: abandon_generation(session, generation)
                )
                if isinstance(exc, Exception):
                    raise ReplayFailed(generation, exc) from exc
                raise
            async with sessions() as session, session.begin():
                previous = await switch_to(session, generation)
            if previous is not None and not keep:
                await without_stalling_reads(
                    sessions, lambda session: drop_generation(session, previous)
                )
                await RankingCache(redis, ttl_s=settings.ranking_ttl_s).drop_generation(previous)
        finished = time.perf_counter()
        return ReplayResult(
            generation=generation,
            previous=previous,
            events=events,
            seconds=finished - started,
            digest=fingerprint,
            workers=workers,
            fold_s=round(fold_s, 2),
            derive_s=round(derive_s, 2),
            digest_s=round(finished - indexing, 2),
            index_s=round(index_s, 2),
            peak_rss_mb=round(peak_rss_mb() + workers_peak, 1),
            shared_cadres=shared,
        )
    finally:
        await redis.aclose()
