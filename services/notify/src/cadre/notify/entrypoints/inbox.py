"""A person's own notifications: the inbox (list, unread count, mark read), the live stream
(SSE, resumable with Last-Event-ID) and their preferences."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field
from sqlalchemy.dialects.postgresql import insert

from cadre.events.auth import CurrentPrincipal, StreamPrincipal
from cadre.events.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Page,
    keyset_page,
    number_cursor,
    whole_number,
)
from cadre.events.problems import Problem
from cadre.events.service import request_sessions
from cadre.notify.adapters.tables import notifications, preferences
from cadre.notify.domain.kinds import Kind
from cadre.notify.domain.preferences import Preferences
from cadre.notify.entrypoints.live import InboxHub

router = APIRouter(tags=["inbox"])
STREAM_BATCH = 200


class Notification(BaseModel):
    id: uuid.UUID
    seq: int = Field(description="per-person sequence; the live stream's event id")
    kind: Kind
    title: str
    body: str
    params: dict[str, Any]
    source: str = Field(description="the event id that caused it, or the reminder's key")
    source_type: str
    created_at: datetime
    read_at: datetime | None


def _notification(row: Any) -> Notification:
    return Notification(
        id=row.notification_id,
        seq=row.seq,
        kind=Kind(row.kind),
        title=row.title,
        body=row.body,
        params=row.params,
        source=row.source,
        source_type=row.source_type,
        created_at=row.created_at,
        read_at=row.read_at,
    )


def _mine(principal: Any) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        notifications.c.tenant == principal.tenant,
        notifications.c.recipient_id == principal.sub,
    )


@router.get("/inbox", summary="My notifications, newest first")
async def list_inbox(
    request: Request,
    principal: CurrentPrincipal,
    unread: bool = Query(False, description="only the unread ones"),
    kind: Kind | None = None,
    cursor: str | None = Query(None, description="`next_cursor` of the previous page"),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
) -> Page[Notification]:
    query = sa.select(notifications).where(*_mine(principal))
    if unread:
        query = query.where(notifications.c.read_at.is_(None))
    if kind is not None:
        query = query.where(notifications.c.kind == kind.value)
    if cursor is not None:
        query = query.where(notifications.c.seq < number_cursor(cursor))
    async with request_sessions(request)() as session:
        rows = (
            await session.execute(query.order_by(notifications.c.seq.desc()).limit(limit + 1))
        ).all()
    page, next_cursor = keyset_page(rows, limit, lambda r: str(r.seq))
    return Page(items=[_notification(r) for r in page], next_cursor=next_cursor)


class UnreadCount(BaseModel):
    unread: int


@router.get("/inbox/unread-count", summary="How many of my notifications are unread")
async def unread_count(request: Request, principal: CurrentPrincipal) -> UnreadCount:
    async with request_sessions(request)() as session:
        count = await session.scalar(
            sa.select(sa.func.count())
            .select_from(notifications)
            .where(*_mine(principal), notifications.c.read_at.is_(None))
        )
    return UnreadCount(unread=count or 0)


@router.post(
    "/inbox/{notification_id}/read",
    summary="Mark one notification read",
    responses={404: {"description": "Not one of mine"}},
)
async def mark_read(
    notification_id: uuid.UUID, request: Request, principal: CurrentPrincipal
) -> Notification:
    async with request_sessions(request)() as session, session.begin():
        await session.execute(
            sa.update(notifications)
            .where(
                *_mine(principal),
                notifications.c.notification_id == notification_id,
                notifications.c.read_at.is_(None),
            )
            .values(read_at=datetime.now(UTC))
        )
        row = (
            await session.execute(
                sa.select(notifications).where(
                    *_mine(principal), notifications.c.notification_id == notification_id
                )
            )
        ).first()
    if row is None:
        raise Problem(404, "notification-not-found", "No such notification in your inbox.")
    return _notification(row)


class MarkAll(BaseModel):
    up_to_seq: int | None = Field(
        None,
        ge=0,
        le=2**63 - 1,
        description="only up to this sequence number (what the reader has seen)",
    )


class Marked(BaseModel):
    marked: int


@router.post("/inbox/read-all", summary="Mark all (or all up to a sequence number) read")
async def mark_all_read(request: Request, principal: CurrentPrincipal, body: MarkAll) -> Marked:
    condition = [*_mine(principal), notifications.c.read_at.is_(None)]
    if body.up_to_seq is not None:
        condition.append(notifications.c.seq <= body.up_to_seq)
    async with request_sessions(request)() as session, session.begin():
        result = await session.execute(
            sa.update(notifications)
            .where(*condition)
            .values(read_at=datetime.now(UTC))
            .returning(notifications.c.seq)
        )
        marked = len(result.all())
    return Marked(marked=marked)


def resume_point(
    last_event_id: Annotated[str | None, Header()] = None,
    resume_after: Annotated[
        str | None, Query(alias="last_event_id", description="instead of the header")
    ] = None,
) -> int | None:
    """Where a reconnecting stream resumes: after the sequence number it saw last."""
    given = last_event_id or resume_after
    if not given:
        return None
    seq = whole_number(given)
    if seq is None:
        raise Problem(422, "bad-last-event-id", "Last-Event-ID is the `id` of a streamed event.")
    return seq


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    summary="My notifications, live (Server-Sent Events)",
    description=(
        "Each event's `id` is the notification's sequence number. Reconnect with the "
        "`Last-Event-ID` header (browsers do it by themselves) or `?last_event_id=` to get "
        "what was missed. Without either, the stream starts with what arrives from now on. "
        "EventSource cannot send headers: pass the token as `?access_token=`."
    ),
)
async def stream(
    request: Request,
    principal: StreamPrincipal,
    after: Annotated[int | None, Depends(resume_point)],
) -> AsyncIterator[ServerSentEvent]:
    sessions = request_sessions(request)
    hub: InboxHub = request.app.state.hub
    keepalive_s: float = request.app.state.runtime.settings.stream_keepalive_s
    if after is None:
        async with sessions() as session:
            after = (
                await session.scalar(
                    sa.select(sa.func.coalesce(sa.func.max(notifications.c.seq), 0)).where(
                        *_mine(principal)
                    )
                )
                or 0
            )
    yield ServerSentEvent(comment="connected", retry=3000)
    while not await request.is_disconnected():
        async with sessions() as session:
            rows = (
                await session.execute(
                    sa.select(notifications)
                    .where(*_mine(principal), notifications.c.seq > after)
                    .order_by(notifications.c.seq)
                    .limit(STREAM_BATCH)
                )
            ).all()
        for row in rows:
            after = row.seq
            if row.live:
                item = _notification(row)
                yield ServerSentEvent(
                    id=str(row.seq), event=row.kind, data=item.model_dump(mode="json")
                )
        if len(rows) == STREAM_BATCH:
            continue
        if not await hub.wait(principal.tenant, principal.sub, keepalive_s):
            yield ServerSentEvent(comment="keep-alive")


@router.get("/preferences", summary="My notification preferences")
async def get_preferences(request: Request, principal: CurrentPrincipal) -> Preferences:
    async with request_sessions(request)() as session:
        stored = await session.scalar(
            sa.select(preferences.c.prefs).where(
                preferences.c.tenant == principal.tenant, preferences.c.cadre_id == principal.sub
            )
        )
    return Preferences.model_validate(stored) if stored is not None else Preferences()


@router.put("/preferences", summary="Replace my notification preferences")
async def put_preferences(
    request: Request, principal: CurrentPrincipal, body: Preferences
) -> Preferences:
    values = {"prefs": body.model_dump(mode="json"), "updated_at": datetime.now(UTC)}
    async with request_sessions(request)() as session, session.begin():
        await session.execute(
            insert(preferences)
            .values(tenant=principal.tenant, cadre_id=principal.sub, **values)
            .on_conflict_do_update(index_elements=["tenant", "cadre_id"], set_=values)
        )
    return body
