"""The scoring service's background work: the live consumer (following the read pointer
across replays), the light sweep, the monthly ranking publication and ruleset reloads.
Only the live generation announces anything; a replay's generation stays silent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Gauge
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cadre.events.backoff import Backoff
from cadre.events.calendar import WorkdayCalendar
from cadre.events.catalogue import (
    BottomCadre,
    LightChanged,
    LightChangedData,
    RankingPublished,
    RankingPublishedData,
)
from cadre.events.consumer import IdempotentConsumer
from cadre.events.context import ChangeContext
from cadre.events.db import lock_for_transaction
from cadre.events.kafka_loop import BatchConsumerLoop, producer_dead_letter
from cadre.events.logging import get_logger
from cadre.events.store import ConcurrencyError, append, stream_version
from cadre.events.vocabulary import Light
from cadre.scoring.adapters import queries
from cadre.scoring.adapters.generations import (
    consumer_group,
    ensure_live_generation,
    live_generation,
)
from cadre.scoring.adapters.projection import BatchEffects, ScoringProjection
from cadre.scoring.adapters.rankings import RankingCache
from cadre.scoring.adapters.rulesets import RulesetBook
from cadre.scoring.adapters.tables import facts, lights
from cadre.scoring.domain.assess import LOOKBACK_DAYS, assess_tenant, composite, month_start
from cadre.scoring.domain.contributions import Contribution
from cadre.scoring.domain.ranking import publication
from cadre.scoring.settings import ScoringSettings

log = get_logger(__name__)
SYSTEM_ACTOR = "scoring"
LIGHT_CHANGES = Counter(
    "cadre_scoring_light_changes_total", "Light colour changes found by the sweep", ["light"]
)
LIVE_GENERATION = Gauge("cadre_scoring_live_generation", "The generation queries read")
RULESETS_REJECTED = Gauge(
    "cadre_scoring_rulesets_rejected", "Tenants whose newest ruleset file was rejected"
)


@dataclass
class ScoringState:
    """What the routes and the jobs share inside one process."""

    settings: ScoringSettings
    sessions: async_sessionmaker[AsyncSession]
    reads: async_sessionmaker[AsyncSession]  # autocommit, for the API's reads
    rulesets: RulesetBook
    rankings: RankingCache
    live: int | None = None
    # Waiting for the light sweep: whole tenants, and cadres (their units) by tenant.
    dirty_tenants: set[str] = field(default_factory=set)
    dirty_cadres: dict[str, set[str]] = field(default_factory=dict)
    # Lights and publications wait until the consumer has read everything there was (on
    # the partitions this instance holds), so a restart does not announce half a history.
    caught_up: bool = False

    def today(self, tenant: str) -> date:
        if self.settings.today:
            return date.fromisoformat(self.settings.today)
        zone = ZoneInfo(self.rulesets.for_tenant(tenant).timezone)
        return datetime.now(zone).date()

    async def generation(self) -> int:
        if self.live is not None:
            return self.live
        async with self.sessions() as session, session.begin():
            return await ensure_live_generation(session, self.settings.group_prefix)


def generation_loop(
    settings: ScoringSettings,
    sessions: async_sessionmaker[AsyncSession],
    producer: AIOKafkaProducer,
    projection: ScoringProjection,
    *,
    assign_all: bool = False,
    share: tuple[int, int] = (0, 1),
) -> tuple[BatchConsumerLoop, str]:
    """The consumer loop folding every topic into `projection`'s generation, in that
    generation's own consumer group (returned beside it). A replay reads every partition
    (`assign_all`), or its `share` of them when several processes split it."""
    group = consumer_group(settings.group_prefix, projection.generation)
    loop = BatchConsumerLoop(
        IdempotentConsumer(
            name=group,
            sessions=sessions,
            dead_letter=producer_dead_letter(producer),
            apply_batch=projection.apply_batch,
            self_deduplicating=projection.self_deduplicating,
            relevant=projection.relevant,
            max_attempts=settings.consumer_max_attempts,
        ),
        bootstrap=settings.kafka_bootstrap,
        topics=settings.topics,
        group_id=group,
        assign_all=assign_all,
        share=share,
        max_records=settings.replay_max_records if assign_all else settings.max_records,
    )
    return loop, group


async def follow_live_generation(state: ScoringState) -> None:
    """Fold new events into the live generation; when a replay moves the read pointer,
    continue with the new generation's consumer group, which starts where the replay
    stopped."""
    settings = state.settings
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await _start_with_retry(producer)
    backoff = Backoff(maximum_s=10.0)
    try:
        while True:
            try:
                await _follow(state, producer)
            except Exception as exc:
                # A database restart, say, surfaces here (the pointer check, the lag): the
                # consumer starts again from its committed offsets, and dedup makes the
                # redelivered records no-ops. Before this, the task died and folding
                # silently stopped until the process was restarted.
                delay = backoff.next()
                log.warning("live consumer failed, restarting", error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
    finally:
        await producer.stop()


async def _follow(state: ScoringState, producer: AIOKafkaProducer) -> None:
    settings = state.settings
    while True:
        generation = await state.generation()
        state.live = generation
        LIVE_GENERATION.set(generation)
        projection = ScoringProjection(generation, state.rulesets, state.rankings)
        loop, group = generation_loop(settings, state.sessions, producer, projection)
        await loop.start()
        log.info("folding into the live generation", generation=generation, group=group)
        try:
            checked = time.monotonic()
            while True:
                if await loop.poll_once() == 0 and not state.caught_up:
                    state.caught_up = await loop.lag() == 0
                state.dirty_tenants |= projection.dirty_tenants
                projection.dirty_tenants.clear()
                for tenant, cadres in projection.dirty_cadres.items():
                    state.dirty_cadres.setdefault(tenant, set()).update(cadres)
                projection.dirty_cadres.clear()
                if time.monotonic() - checked >= settings.pointer_poll_s:
                    checked = time.monotonic()
                    async with state.sessions() as session:
                        pointer = await live_generation(session)
                    if pointer is not None and pointer != generation:
                        log.info("read pointer moved", old=generation, new=pointer)
                        state.live = pointer
                        state.caught_up = False
                        break
        finally:
            await loop.stop()


async def _start_with_retry(producer: AIOKafkaProducer) -> None:
    delay = 0.5
    while True:
        try:
            await producer.start()
            return
        except Exception as exc:
            log.warning("kafka not reachable yet", error=repr(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)


# Members re-assessed per transaction. A unit is never split (a light depends on the
# unit's quarter scores), and a group's work is small enough not to hold the event loop:
# one pass over a 2,000-cadre tenant held it for 150 ms, which radar reads waited out.
SWEEP_GROUP_MEMBERS = 200


def unit_groups(rows: Sequence[Any], cadres: Collection[str] | None) -> list[list[Any]]:
    """Member rows grouped by whole units, about `SWEEP_GROUP_MEMBERS` a group; only the
    units of `cadres` when given."""
    by_unit: dict[str, list[Any]] = {}
    for row in rows:
        by_unit.setdefault(row.unit_id, []).append(row)
    if cadres is not None:
        wanted = {row.unit_id for row in rows if row.cadre_id in cadres}
        by_unit = {unit: members for unit, members in by_unit.items() if unit in wanted}
    groups: list[list[Any]] = []
    for unit in sorted(by_unit):
        if not groups or len(groups[-1]) + len(by_unit[unit]) > SWEEP_GROUP_MEMBERS:
            groups.append([])
        groups[-1].extend(by_unit[unit])
    return [group for group in groups if group]


async def sweep_lights(
    state: ScoringState,
    generation: int,
    tenant: str,
    announce: bool = True,
    cadres: Collection[str] | None = None,
) -> int:
    """Re-evaluate the lights of `tenant` (only of the units of `cadres`, when given: a
    light depends on the cadre's own record and their unit's quarter scores); store changes
    and announce changed colours. Returns how many lights changed colour."""
    async with state.reads() as session:
        rows = await queries.active_members(session, generation, tenant)
        calendar = await queries.calendar(session, generation, tenant)
    as_of = state.today(tenant)
    changed = 0
    for group in unit_groups(rows, cadres):
        began = time.monotonic()
        changed += await _sweep_group(state, generation, tenant, group, calendar, as_of, announce)
        await _give_back_the_cores(time.monotonic() - began)
    return changed


async def _give_back_the_cores(held_s: float) -> None:
    """Pause as long as a group took. A sweep of every unit at once was a burst of CPU that
    delayed the check-ins served beside it (ingest benchmark); paced, it takes about twice
    as long, a small part of `lights_changed_interval_s`."""
    await asyncio.sleep(held_s)


async def _sweep_group(
    state: ScoringState,
    generation: int,
    tenant: str,
    rows: Sequence[Any],
    calendar: WorkdayCalendar,
    as_of: date,
    announce: bool,
) -> int:
    """One group of whole units, in one transaction. Instances take turns per tenant (an
    advisory lock) and read the stored lights under it, so nothing is announced twice."""
    ruleset = state.rulesets.for_tenant(tenant)
    ids = [row.cadre_id for row in rows]
    async with state.sessions() as session, session.begin():
        await lock_for_transaction(session, f"scoring-lights:{generation}:{tenant}")
        assessments = assess_tenant(
            [queries.as_member(row) for row in rows],
            await queries.tenant_facts(
                session, generation, tenant, as_of - timedelta(LOOKBACK_DAYS), cadres=ids
            ),
            await queries.tenant_contributions(
                session, generation, tenant, month_start(as_of, 3), cadres=ids
            ),
            as_of,
            calendar,
            ruleset,
        )
        paths = {row.cadre_id: row.unit_path for row in rows}
        current = await queries.current_lights(session, generation, tenant, cadres=ids)
        changed_colour = 0
        now = datetime.now(UTC)
        for cadre, assessment in assessments.items():
            before = current.get(cadre)
            previous = Light(before.light) if before is not None else None
            if (
                before is not None
                and previous is assessment.light
                and (tuple(before.reasons) == assessment.reasons)
            ):
                continue
            values = {
                "light": assessment.light.value,
                "reasons": list(assessment.reasons),
                "as_of": as_of,
                "changed_at": (
                    before.changed_at
                    if before is not None and previous is assessment.light
                    else now
                ),
            }
            await session.execute(
                insert(lights)
                .values(generation=generation, tenant=tenant, cadre_id=cadre, **values)
                .on_conflict_do_update(
                    index_elements=["generation", "tenant", "cadre_id"], set_=values
                )
            )
            colour_changed = previous is not assessment.light and not (
                previous is None and assessment.light is Light.GREEN
            )
            if colour_changed:
                changed_colour += 1
                LIGHT_CHANGES.labels(assessment.light.value).inc()
                if announce:
                    stream = f"light:{tenant}:{cadre}"
                    event = LightChanged(
                        **ChangeContext(tenant, SYSTEM_ACTOR).envelope(cadre, paths[cadre]),
                        data=LightChangedData(
                            previous=previous,
                            current=assessment.light,
                            reasons=assessment.reasons,
                            as_of=as_of,
                        ),
                    )
                    await append(session, stream, await stream_version(session, stream), [event])
        return changed_colour


def previous_month(today: date) -> str:
    first = month_start(today, 1)
    return f"{first.year}-{first.month:02d}"


async def publish_monthly_ranking(state: ScoringState, generation: int, tenant: str) -> bool:
    """On the 1st (or the first run after it), publish last month's ranking of each unit,
    once: the tenant-month stream must be new, so a second attempt anywhere is a no-op."""
    today = state.today(tenant)
    period = previous_month(today)
    stream = f"ranking:{tenant}:{period}"
    ruleset = state.rulesets.for_tenant(tenant)
    start = month_start(today, 1)
    end = month_start(today) - timedelta(days=1)
    async with state.sessions() as session, session.begin():
        if await stream_version(session, stream) > 0:
            return False
        rows = await queries.active_members(session, generation, tenant)
        items = await queries.tenant_contributions(session, generation, tenant, start)
        by_cadre: dict[str, list[Contribution]] = {}
        for item in items:
            if item.day <= end:
                by_cadre.setdefault(item.cadre_id, []).append(item)
        units: dict[str, dict[str, float]] = {}
        paths: dict[str, str] = {}
        for row in rows:
            units.setdefault(row.unit_id, {})[row.cadre_id] = composite(
                by_cadre.get(row.cadre_id, []), ruleset.weights
            )
            paths[row.unit_id] = row.unit_path
        events = []
        for unit_id in sorted(units):
            chosen = publication(units[unit_id])
            events.append(
                RankingPublished(
                    **ChangeContext(tenant, SYSTEM_ACTOR).envelope(unit_id, paths[unit_id]),
                    data=RankingPublishedData(
                        unit_id=unit_id,
                        period=period,
                        generation=generation,
                        showcased=chosen.showcased,
                        bottom=tuple(
                            BottomCadre(cadre_id=cadre, mentor_id=mentor)
                            for cadre, mentor in chosen.bottom
                        ),
                    ),
                )
            )
        if not events:
            return False
        try:
            await append(session, stream, 0, events)
        except ConcurrencyError:
            return False
    log.info("monthly ranking published", tenant=tenant, period=period, units=len(events))
    return True


async def recompute_tenants(state: ScoringState, generation: int, tenants: Iterable[str]) -> None:
    """After a ruleset change: derive every contribution of the tenants afresh from the
    counters (no replay), in chunks of cadres."""
    projection = ScoringProjection(generation, state.rulesets, state.rankings)
    for tenant in tenants:
        async with state.sessions() as session:
            cadres = sorted(
                (
                    await session.execute(
                        sa.select(facts.c.cadre_id)
                        .where(facts.c.generation == generation, facts.c.tenant == tenant)
                        .distinct()
                    )
                ).scalars()
            )
        for start in range(0, len(cadres), 200):
            async with state.sessions() as session, session.begin():
                await projection.recompute(
                    session, [(tenant, c) for c in cadres[start : start + 200]], BatchEffects()
                )
        await state.rankings.invalidate_tenant(generation, tenant)
        state.dirty_tenants.add(tenant)
        log.info("recomputed from the counters", tenant=tenant, cadres=len(cadres))


async def run_periodic_jobs(state: ScoringState) -> None:
    settings = state.settings
    last_full_sweep = last_sweep = 0.0
    last_reload = time.monotonic()
    tick = min(
        2.0,
        settings.lights_interval_s,
        settings.lights_changed_interval_s,
        settings.ruleset_reload_s,
    )
    while True:
        await asyncio.sleep(tick)
        try:
            generation = await state.generation()
            if time.monotonic() - last_reload >= settings.ruleset_reload_s:
                last_reload = time.monotonic()
                changed = state.rulesets.reload()
                RULESETS_REJECTED.set(len(state.rulesets.errors))
                if changed:
                    await recompute_tenants(state, generation, sorted(changed))
            if not state.caught_up:
                continue
            full = time.monotonic() - last_full_sweep >= settings.lights_interval_s
            if not full and time.monotonic() - last_sweep < settings.lights_changed_interval_s:
                continue
            last_sweep = time.monotonic()
            async with state.reads() as session:
                known = set(await queries.tenants(session, generation))
            whole = known if full else state.dirty_tenants & known
            state.dirty_tenants -= whole
            partial = {
                tenant: state.dirty_cadres.pop(tenant)
                for tenant in sorted(known & state.dirty_cadres.keys())
            }
            for tenant in sorted(whole | partial.keys()):
                cadres = None if tenant in whole else partial[tenant]
                await sweep_lights(state, generation, tenant, cadres=cadres)
            if full:
                last_full_sweep = time.monotonic()
                if settings.publish_rankings:
                    for tenant in known:
                        await publish_monthly_ranking(state, generation, tenant)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a job failing must not stop the others
            log.exception("scoring job failed", error=repr(exc))
