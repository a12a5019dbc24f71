"""`scoring replay`: rebuild the projection from the event log into a new generation, muted
(no lights, no notifications), and switch the read pointer once it has caught up.

The work is split across `workers` processes, because one Python process saturates a core
long before Kafka or PostgreSQL do. It runs in two phases:
1. fold: each worker reads its share of the partitions (every `workers`-th one) from the
   earliest offset and folds them into fact rows, under the generation's one consumer
   group. Facts are commutative and a redelivered event lands on its first copy's
   partition, so the shares never need each other.
2. derive: once every share is folded, each worker derives the contributions of its share
   of the cadres from all of their facts.
Then the coordinator switches the pointer and digests the new generation. A replay that
fails leaves no rows behind: its generation is marked failed and emptied."""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import resource
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from multiprocessing.queues import Queue
from typing import Any

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
    drop_generation,
    switch_to,
)
from cadre.scoring.adapters.projection import CadreKey, ScoringProjection
from cadre.scoring.adapters.rankings import RankingCache
from cadre.scoring.adapters.rulesets import RulesetBook
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
    # Where the time went: reading and folding the log, deriving contributions, and the
    # switch with the digest of the new generation.
    fold_s: float = 0.0
    derive_s: float = 0.0
    digest_s: float = 0.0
    # The sum of every replay process's own peak, coordinator included.
    peak_rss_mb: float = 0.0


class ReplayFailed(RuntimeError):
    """A replay that could not finish (a worker died, the database went away): its
    generation was abandoned, and nothing live changed."""

    def __init__(self, generation: int, cause: Exception) -> None:
        super().__init__(
            f"the replay into generation {generation} failed: {cause or type(cause).__name__}."
            " That generation was abandoned and the live one is unchanged; run the replay again."
        )
        self.generation = generation


@dataclass(frozen=True)
class FoldOutcome:
    events: int
    pending: list[CadreKey]
    peak_rss_mb: float


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


# ---- one share of the work (in a worker process, or in this one when workers == 1)


async def fold_share(
    settings: ScoringSettings,
    generation: int,
    share: tuple[int, int],
    on_progress: Callable[[int, int], None],
) -> FoldOutcome:
    """Fold this share's partitions into fact rows, up to the end of the log as it is now;
    `on_progress(done, remaining)` after every batch."""
    projection = ScoringProjection(
        generation, RulesetBook.load(settings.rulesets_dir), None, defer_derivation=True
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)  # dead letters
    await producer.start()
    done = 0
    try:
        async with open_database(settings, migrate=False) as sessions:
            loop, _ = generation_loop(
                settings, sessions, producer, projection, assign_all=True, share=share
            )
            await loop.start()
            try:
                remaining = await loop.lag()
                on_progress(done, remaining)
                while True:
                    fetched = await loop.poll_once(timeout_ms=500)
                    done += fetched
                    if fetched == 0:
                        remaining = await loop.lag()
                        if remaining == 0:
                            break
                    else:
                        remaining = max(0, remaining - fetched)
                    on_progress(done, remaining)
            finally:
                await loop.stop()
    finally:
        await producer.stop()
    on_progress(done, 0)
    return FoldOutcome(done, sorted(projection.pending), peak_rss_mb())


async def derive_share(
    settings: ScoringSettings,
    generation: int,
    cadres: Sequence[CadreKey],
    on_progress: Callable[[int], None],
) -> float:
    """Derive the contributions of `cadres`; returns this process's peak RSS in MB. Ranking
    sets are not written through: none exists for a generation nobody reads yet."""
    projection = ScoringProjection(
        generation, RulesetBook.load(settings.rulesets_dir), None, defer_derivation=True
    )
    projection.pending = set(cadres)
    async with open_database(settings, migrate=False) as sessions:
        await projection.derive_pending(sessions, on_progress=on_progress)
    return peak_rss_mb()


# ---- the worker processes' entry points (module level, so a spawned process finds them)

_progress_queue: Queue[tuple[str, int, int, int]] | None = None


def _start_worker(progress: Queue[tuple[str, int, int, int]]) -> None:
    global _progress_queue
    _progress_queue = progress
    configure_logging("scoring-replay", "WARNING")
    tune_garbage_collector()


def _report(phase: str, index: int, done: int, total: int) -> None:
    if _progress_queue is not None:
        _progress_queue.put((phase, index, done, total))


def _fold_in_worker(settings: ScoringSettings, generation: int, share: tuple[int, int]) -> Any:
    index = share[0]
    return asyncio.run(
        fold_share(
            settings,
            generation,
            share,
            lambda done, remaining: _report(FOLD, index, done, done + remaining),
        )
    )


def _derive_in_worker(
    settings: ScoringSettings, generation: int, index: int, cadres: list[CadreKey]
) -> float:
    return asyncio.run(
        derive_share(
            settings, generation, cadres, lambda done: _report(DERIVE, index, done, len(cadres))
        )
    )


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


async def _run_in_pool(
    settings: ScoringSettings, generation: int, workers: int, board: _ProgressBoard
) -> tuple[int, float, float, float]:
    """Both phases across `workers` processes; returns (events, fold s, derive s, peak RSS
    of the workers summed)."""
    context = multiprocessing.get_context("spawn")  # no inherited event loop or sockets
    progress: Queue[tuple[str, int, int, int]] = context.Queue()
    relay = asyncio.create_task(_relay_progress(progress, board))
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    pool: Executor = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(progress,)
    )
    try:
        folds: list[FoldOutcome] = await asyncio.gather(
            *(
                loop.run_in_executor(pool, _fold_in_worker, settings, generation, (i, workers))
                for i in range(workers)
            )
        )
        folded = time.perf_counter()
        cadres = sorted({key for outcome in folds for key in outcome.pending})
        peaks: list[float] = await asyncio.gather(
            *(
                loop.run_in_executor(
                    pool, _derive_in_worker, settings, generation, i, cadres[i::workers]
                )
                for i in range(workers)
            )
        )
        derived = time.perf_counter()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        relay.cancel()
        progress.close()
    # A worker process ran both phases; its peak is the larger of the two it reported.
    peak = sum(max(fold.peak_rss_mb, derive) for fold, derive in zip(folds, peaks, strict=True))
    return sum(f.events for f in folds), folded - started, derived - folded, peak


async def _run_here(
    settings: ScoringSettings, generation: int, board: _ProgressBoard
) -> tuple[int, float, float]:
    started = time.perf_counter()
    outcome = await fold_share(
        settings,
        generation,
        (0, 1),
        lambda done, remaining: board.update(FOLD, 0, done, done + remaining),
    )
    folded = time.perf_counter()
    await derive_share(
        settings,
        generation,
        outcome.pending,
        lambda done: board.update(DERIVE, 0, done, len(outcome.pending)),
    )
    return outcome.events, folded - started, time.perf_counter() - folded


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
            try:
                if workers == 1:
                    events, fold_s, derive_s = await _run_here(settings, generation, board)
                    workers_peak = 0.0
                else:
                    events, fold_s, derive_s, workers_peak = await _run_in_pool(
                        settings, generation, workers, board
                    )
            except BaseException as exc:
                async with sessions() as session, session.begin():
                    await abandon_generation(session, generation)
                if isinstance(exc, Exception):
                    raise ReplayFailed(generation, exc) from exc
                raise
            switching = time.perf_counter()
            async with sessions() as session, session.begin():
                previous = await switch_to(session, generation)
            if previous is not None and not keep:
                async with sessions() as session, session.begin():
                    await drop_generation(session, previous)
                await RankingCache(redis, ttl_s=settings.ranking_ttl_s).drop_generation(previous)
            async with sessions() as session:
                fingerprint = await queries.generation_digest(session, generation)
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
            digest_s=round(finished - switching, 2),
            peak_rss_mb=round(peak_rss_mb() + workers_peak, 1),
        )
    finally:
        await redis.aclose()
