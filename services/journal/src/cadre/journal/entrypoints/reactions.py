"""Leader reactions to entries (like or dislike, always with a reason) and peer
endorsements between colleagues of one unit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cadre.events.catalogue import (
    EntryReacted,
    EntryReactedData,
    PeerEndorsed,
    PeerEndorsedData,
    ReactionRetracted,
    ReactionRetractedData,
)
from cadre.events.context import ChangeContext
from cadre.events.db import lock_for_transaction
from cadre.events.envelope import new_event_id
from cadre.events.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Page,
    keyset_after,
    keyset_cursor,
    keyset_page,
)
from cadre.events.problems import Problem
from cadre.events.store import append, stream_version
from cadre.events.vocabulary import Dimension, LeaderLevel, Reaction
from cadre.journal.adapters.tables import REPLICA, endorsements, entries, reactions
from cadre.journal.domain.rules import (
    PastEndorsement,
    check_endorsement,
    check_reaction,
    entry_dimension,
    is_reciprocal,
    iso_week,
    may_view,
)
from cadre.journal.entrypoints.common import (
    CurrentPrincipal,
    as_problems,
    sessions_of,
    settings_of,
    today,
)

router = APIRouter(tags=["reactions and endorsements"])


class ReactionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reaction: Reaction
    reason: str = Field(min_length=1, max_length=1000, description="required")


class ReactionOut(BaseModel):
    entry_id: str
    leader_id: str
    reaction: Reaction
    reason: str
    level: LeaderLevel
    reacted_at: datetime


def reaction_stream(tenant: str, entry_id: str, leader_id: str) -> str:
    return f"reaction:{tenant}:{entry_id}:{leader_id}"


async def _entry_for_reaction(session: AsyncSession, tenant: str, entry_id: str) -> Any:
    return (
        await session.execute(
            sa.select(entries)
            .where(entries.c.tenant == tenant, entries.c.entry_id == entry_id)
            .with_for_update()
        )
    ).first()


@router.post(
    "/entries/{entry_id}/reactions",
    response_model=ReactionOut,
    status_code=201,
    responses={
        200: {"description": "The leader's earlier reaction was changed"},
        403: {"description": "Not a leader over the author, or the author themself"},
        404: {"description": "No such entry"},
    },
)
async def react(
    entry_id: str, body: ReactionIn, principal: CurrentPrincipal, request: Request
) -> JSONResponse:
    """Like or dislike an entry, with a reason. A leader has one reaction per entry:
    posting again changes it."""
    tenant, leader_id = principal.tenant, principal.sub
    settings = settings_of(request)
    async with sessions_of(request)() as session, session.begin():
        entry = await _entry_for_reaction(session, tenant, entry_id)
        if entry is None:
            raise Problem(404, "entry-not-found", f"No entry {entry_id!r}.")
        # Scope is decided by the reaction rule, so a leader of another unit hears 403.
        author = await REPLICA.person(session, tenant, entry.cadre_id, entry.unit_path)
        author_path = author.unit_path if author is not None else entry.unit_path
        with as_problems():
            level = check_reaction(
                principal, entry.cadre_id, author_path, settings.levels_reacting(tenant)
            )
        previous = await _reaction_of(session, tenant, entry_id, leader_id)
        if previous is not None and (previous.reaction, previous.reason) == (
            body.reaction.value,
            body.reason,
        ):
            return _reaction_answer(previous, 200)
        now = datetime.now(UTC)
        stream = reaction_stream(tenant, entry_id, leader_id)
        event = EntryReacted(
            **ChangeContext.of(request, principal).envelope(entry.cadre_id, entry.unit_path, now),
            data=EntryReactedData(
                entry_id=entry_id,
                reaction=body.reaction,
                reason=body.reason,
                reactor_level=level,
                dimension=entry_dimension(entry.tags),
                entry_day=entry.day,
            ),
        )
        await append(session, stream, await stream_version(session, stream), [event])
        values = {
            "reaction": body.reaction.value,
            "reason": body.reason,
            "level": level.value,
            "reacted_at": now,
        }
        row = await session.execute(
            insert(reactions)
            .values(tenant=tenant, entry_id=entry_id, leader_id=leader_id, **values)
            .on_conflict_do_update(index_elements=["tenant", "entry_id", "leader_id"], set_=values)
            .returning(reactions)
        )
        answer = _reaction_answer(row.one(), 201 if previous is None else 200)
        await _recount(session, tenant, entry_id)
        return answer


async def _reaction_of(session: AsyncSession, tenant: str, entry_id: str, leader_id: str) -> Any:
    """One leader's reaction to one entry, if any."""
    return (
        await session.execute(
            sa.select(reactions).where(
                reactions.c.tenant == tenant,
                reactions.c.entry_id == entry_id,
                reactions.c.leader_id == leader_id,
            )
        )
    ).first()


def _reaction_out(row: Any) -> ReactionOut:
    return ReactionOut(
        entry_id=row.entry_id,
        leader_id=row.leader_id,
        reaction=Reaction(row.reaction),
        reason=row.reason,
        level=LeaderLevel(row.level),
        reacted_at=row.reacted_at,
    )


def _reaction_answer(row: Any, status: int) -> JSONResponse:
    return JSONResponse(_reaction_out(row).model_dump(mode="json"), status_code=status)


async def _recount(session: AsyncSession, tenant: str, entry_id: str) -> None:
    counts = (
        sa.select(
            sa.func.count().filter(reactions.c.reaction == "like"),
            sa.func.count().filter(reactions.c.reaction == "dislike"),
        )
        .where(reactions.c.tenant == tenant, reactions.c.entry_id == entry_id)
        .subquery()
    )
    likes, dislikes = (await session.execute(sa.select(counts))).one()
    await session.execute(
        sa.update(entries)
        .where(entries.c.tenant == tenant, entries.c.entry_id == entry_id)
        .values(likes=likes, dislikes=dislikes)
    )


@router.delete(
    "/entries/{entry_id}/reactions",
    status_code=204,
    responses={404: {"description": "You have no reaction on this entry"}},
)
async def retract(entry_id: str, principal: CurrentPrincipal, request: Request) -> None:
    """Take back my reaction (`reaction_retracted`)."""
    tenant, leader_id = principal.tenant, principal.sub
    async with sessions_of(request)() as session, session.begin():
        entry = await _entry_for_reaction(session, tenant, entry_id)
        previous = await _reaction_of(session, tenant, entry_id, leader_id)
        if entry is None or previous is None:
            raise Problem(404, "no-reaction", "You have no reaction on this entry.")
        stream = reaction_stream(tenant, entry_id, leader_id)
        event = ReactionRetracted(
            **ChangeContext.of(request, principal).envelope(entry.cadre_id, entry.unit_path),
            data=ReactionRetractedData(
                entry_id=entry_id,
                reaction=Reaction(previous.reaction),
                reactor_level=LeaderLevel(previous.level),
                dimension=entry_dimension(entry.tags),
            ),
        )
        await append(session, stream, await stream_version(session, stream), [event])
        await session.execute(
            sa.delete(reactions).where(
                reactions.c.tenant == tenant,
                reactions.c.entry_id == entry_id,
                reactions.c.leader_id == leader_id,
            )
        )
        await _recount(session, tenant, entry_id)


@router.get("/entries/{entry_id}/reactions", response_model=list[ReactionOut])
async def list_reactions(
    entry_id: str, principal: CurrentPrincipal, request: Request
) -> list[ReactionOut]:
    async with sessions_of(request)() as session:
        entry = (
            await session.execute(
                sa.select(entries.c.cadre_id, entries.c.unit_path).where(
                    entries.c.tenant == principal.tenant, entries.c.entry_id == entry_id
                )
            )
        ).first()
        if entry is None or not may_view(principal, entry.cadre_id, entry.unit_path):
            raise Problem(404, "entry-not-found", f"No entry {entry_id!r} that you can see.")
        rows = await session.execute(
            sa.select(reactions)
            .where(reactions.c.tenant == principal.tenant, reactions.c.entry_id == entry_id)
            .order_by(reactions.c.reacted_at)
        )
        return [_reaction_out(r) for r in rows]


# ------------------------------------------------------------------ endorsements


class EndorsementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cadre_id: str = Field(min_length=1, max_length=128)
    dimension: Dimension
    reason: str = Field(min_length=1, max_length=1000, description="required")


class EndorsementOut(BaseModel):
    endorsement_id: str
    endorser_id: str
    cadre_id: str
    dimension: Dimension
    reason: str
    week: str
    reciprocal: bool
    endorsed_at: datetime


def _endorsement_out(row: Any) -> EndorsementOut:
    return EndorsementOut(
        endorsement_id=row.endorsement_id,
        endorser_id=row.endorser_id,
        cadre_id=row.target_id,
        dimension=Dimension(row.dimension),
        reason=row.reason,
        week=row.week,
        reciprocal=row.reciprocal,
        endorsed_at=row.endorsed_at,
    )


@router.post(
    "/endorsements",
    response_model=EndorsementOut,
    status_code=201,
    responses={
        403: {"description": "Not a colleague of the same unit"},
        409: {"description": "Already endorsed this colleague this week"},
    },
)
async def endorse(
    body: EndorsementIn, principal: CurrentPrincipal, request: Request
) -> EndorsementOut:
    """Endorse a colleague of the same unit in one dimension, with a reason: at most once
    per colleague per week. Points are capped by scoring, not here."""
    settings = settings_of(request)
    tenant, endorser_id = principal.tenant, principal.sub
    day = today(request)
    week = iso_week(day)
    async with sessions_of(request)() as session, session.begin():
        endorser = await REPLICA.person(session, tenant, endorser_id, principal.unit_path)
        target = await REPLICA.person(session, tenant, body.cadre_id)
        with as_problems():
            check_endorsement(
                principal,
                endorser.unit_id if endorser is not None and endorser.active else None,
                body.cadre_id,
                target.unit_id if target is not None and target.active else None,
            )
        assert target is not None
        # One pair per week: lock the pair so two quick taps cannot both pass.
        await lock_for_transaction(session, f"endorse:{tenant}:{endorser_id}:{body.cadre_id}")
        pair = sa.or_(
            sa.and_(
                endorsements.c.endorser_id == endorser_id,
                endorsements.c.target_id == body.cadre_id,
            ),
            sa.and_(
                endorsements.c.endorser_id == body.cadre_id,
                endorsements.c.target_id == endorser_id,
            ),
        )
        history = [
            PastEndorsement(r.endorser_id, r.target_id, r.day)
            for r in await session.execute(
                sa.select(
                    endorsements.c.endorser_id, endorsements.c.target_id, endorsements.c.day
                ).where(endorsements.c.tenant == tenant, pair)
            )
        ]
        if any(h.endorser_id == endorser_id and iso_week(h.day) == week for h in history):
            raise Problem(
                409,
                "already-endorsed-this-week",
                f"You already endorsed {body.cadre_id} in week {week}.",
            )
        reciprocal = is_reciprocal(
            endorser_id,
            body.cadre_id,
            day,
            history,
            settings.reciprocal_window_days,
            settings.reciprocal_min_each_way,
        )
        endorsement_id = str(new_event_id())
        now = datetime.now(UTC)
        event = PeerEndorsed(
            **ChangeContext.of(request, principal).envelope(body.cadre_id, target.unit_path, now),
            data=PeerEndorsedData(
                endorsement_id=endorsement_id,
                endorser_id=endorser_id,
                dimension=body.dimension,
                reason=body.reason,
                reciprocal=reciprocal,
            ),
        )
        await session.execute(
            sa.insert(endorsements).values(
                tenant=tenant,
                endorsement_id=endorsement_id,
                endorser_id=endorser_id,
                target_id=body.cadre_id,
                dimension=body.dimension.value,
                reason=body.reason,
                week=week,
                day=day,
                reciprocal=reciprocal,
                endorsed_at=now,
            )
        )
        await append(session, f"endorsement:{tenant}:{endorsement_id}", 0, [event])
        return EndorsementOut(
            endorsement_id=endorsement_id,
            endorser_id=endorser_id,
            cadre_id=body.cadre_id,
            dimension=body.dimension,
            reason=body.reason,
            week=week,
            reciprocal=reciprocal,
            endorsed_at=now,
        )


@router.get("/endorsements", response_model=Page[EndorsementOut])
async def my_endorsements(
    principal: CurrentPrincipal,
    request: Request,
    direction: Annotated[str, Query(pattern="^(received|given)$")] = "received",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[EndorsementOut]:
    """Endorsements I received (or gave), newest first."""
    column = endorsements.c.target_id if direction == "received" else endorsements.c.endorser_id
    query = sa.select(endorsements).where(
        endorsements.c.tenant == principal.tenant, column == principal.sub
    )
    if cursor is not None:
        when, endorsement_id = keyset_after(cursor)
        query = query.where(
            sa.tuple_(endorsements.c.endorsed_at, endorsements.c.endorsement_id)
            < sa.tuple_(sa.literal(when), sa.literal(endorsement_id))
        )
    async with sessions_of(request)() as session:
        rows = (
            await session.execute(
                query.order_by(
                    endorsements.c.endorsed_at.desc(), endorsements.c.endorsement_id.desc()
                ).limit(limit + 1)
            )
        ).all()
    page, next_cursor = keyset_page(
        rows, limit, lambda r: keyset_cursor(r.endorsed_at, r.endorsement_id)
    )
    return Page[EndorsementOut](items=[_endorsement_out(r) for r in page], next_cursor=next_cursor)
