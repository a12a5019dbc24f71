"""Entries: posting (JSON, or multipart with attachments), editing with kept history, the
feeds, the back-check search and attachment downloads."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from time import monotonic
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from cadre.events.auth import Principal
from cadre.events.catalogue import AttachmentRef, EntryPosted, EntryPostedData
from cadre.events.context import ChangeContext
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
from cadre.events.query import day_query
from cadre.events.store import append, read_stream
from cadre.events.units import covers, in_subtree
from cadre.events.vocabulary import Dimension, Role
from cadre.journal.adapters import uploads
from cadre.journal.adapters.inbound import lock_day
from cadre.journal.adapters.tables import REPLICA, attachments, entries, missed_days, tasks
from cadre.journal.domain.media import MediaKind
from cadre.journal.domain.rules import (
    MAX_BACKDATE_DAYS,
    can_read_all,
    check_edit,
    check_entry_day,
    check_tags,
    entry_dimension,
    may_view,
)
from cadre.journal.domain.search import (
    document_tokens,
    like_pattern,
    query_tokens,
    rarest_token,
    tsquery_text,
)
from cadre.journal.entrypoints.common import (
    CurrentPrincipal,
    as_problems,
    blobs_of,
    json_or_form,
    sessions_of,
    settings_of,
    today,
    with_uploads,
)

router = APIRouter(tags=["entries"])
MAX_TEXT = 5000


class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    tags: list[str] = Field(default_factory=list, max_length=10)
    day: date | None = Field(default=None, description="defaults to today in the tenant's zone")


class EntryEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    tags: list[str] | None = Field(default=None, max_length=10)


class AttachmentOut(BaseModel):
    sha256: str
    media_type: str
    kind: MediaKind
    size_bytes: int
    filename: str
    url: str
    thumbnail_url: str | None


class EntryOut(BaseModel):
    entry_id: str
    cadre_id: str
    unit_id: str
    unit_path: str
    day: date
    posted_at: datetime
    edited_at: datetime | None
    revision: int
    text: str
    tags: list[str]
    dimension: Dimension | None
    likes: int
    dislikes: int
    attachments: list[AttachmentOut]


class RevisionOut(BaseModel):
    revision: int
    event_id: str
    recorded_at: datetime
    text: str
    tags: list[str]


def _search_vector(text: str, tags: tuple[str, ...]) -> sa.ColumnElement[Any]:
    """What the back-check finds an entry by: its text and its tags."""
    return sa.func.array_to_tsvector(document_tokens(text + " " + " ".join(tags)))


def entry_stream(tenant: str, entry_id: str) -> str:
    return f"entry:{tenant}:{entry_id}"


def _attachment_out(row: Any) -> AttachmentOut:
    return AttachmentOut(
        sha256=row.sha256,
        media_type=row.media_type,
        kind=MediaKind(row.kind),
        size_bytes=row.size_bytes,
        filename=row.filename,
        url=f"/v1/attachments/{row.sha256}",
        thumbnail_url=(f"/v1/attachments/{row.sha256}/thumbnail" if row.thumbnail_sha256 else None),
    )


async def entries_out(session: AsyncSession, tenant: str, rows: list[Any]) -> list[EntryOut]:
    ids = [row.entry_id for row in rows]
    files: dict[str, list[AttachmentOut]] = {entry_id: [] for entry_id in ids}
    if ids:
        for row in await session.execute(
            sa.select(attachments)
            .where(attachments.c.tenant == tenant, attachments.c.owner_id.in_(ids))
            .order_by(attachments.c.owner_id, attachments.c.position)
        ):
            files[row.owner_id].append(_attachment_out(row))
    return [
        EntryOut(
            entry_id=row.entry_id,
            cadre_id=row.cadre_id,
            unit_id=row.unit_id,
            unit_path=row.unit_path,
            day=row.day,
            posted_at=row.posted_at,
            edited_at=row.edited_at,
            revision=row.revision,
            text=row.text,
            tags=list(row.tags),
            dimension=entry_dimension(row.tags),
            likes=row.likes,
            dislikes=row.dislikes,
            attachments=files[row.entry_id],
        )
        for row in rows
    ]


def _entry_from_form(form: FormData) -> dict[str, Any]:
    unknown = set(form.keys()) - {"text", "tags", "day", "files"}
    if unknown:
        raise Problem(422, "unknown-field", f"Unknown form fields: {', '.join(sorted(unknown))}.")
    tags: list[str] = []
    for value in form.getlist("tags"):
        if isinstance(value, str):
            tags += [t for t in value.split(",") if t.strip()]
    raw: dict[str, Any] = {"text": form.get("text"), "tags": tags}
    if form.get("day"):
        raw["day"] = form.get("day")
    return raw


ENTRY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": EntryIn.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["text"],
                    "properties": {
                        "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT},
                        "tags": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "repeat the field, or separate with commas",
                        },
                        "day": {"type": "string", "format": "date"},
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "images, documents, voice or video",
                        },
                    },
                }
            },
        },
    }
}


@router.post(
    "/entries",
    response_model=EntryOut,
    status_code=201,
    openapi_extra=ENTRY_BODY,
    responses={
        409: {"description": "The day was already recorded as missed"},
        413: {"description": "An attachment is too large"},
        415: {"description": "An attachment's content is not an accepted type"},
    },
)
async def post_entry(principal: CurrentPrincipal, request: Request) -> EntryOut:
    """Post a journal entry: JSON for text only, or multipart/form-data with `files`. Files
    are judged by their content; a refused request stores nothing."""
    settings = settings_of(request)
    policy = settings.upload_policy()
    length = int(request.headers.get("content-length") or 0)
    if length > policy.largest * policy.max_files + (1 << 20):
        raise Problem(413, "request-too-large", "The request is larger than any entry may be.")
    body, files = await json_or_form(
        request,
        EntryIn,
        "entry",
        from_form=_entry_from_form,
        file_field="files",
        max_files=policy.max_files + 1,
        max_fields=30,
    )
    with as_problems():
        tags = check_tags(body.tags)
    return await with_uploads(
        request, files, lambda batch: _record_entry(request, principal, body, tags, batch)
    )


async def _record_entry(
    request: Request,
    principal: Principal,
    body: EntryIn,
    tags: tuple[str, ...],
    batch: uploads.PreparedBatch,
) -> EntryOut:
    settings = settings_of(request)
    tenant, cadre_id = principal.tenant, principal.sub
    local_today = today(request)
    day = body.day or local_today
    entry_id = str(new_event_id())
    now = datetime.now(UTC)
    async with sessions_of(request)() as session, session.begin():
        person = await REPLICA.person(session, tenant, cadre_id, principal.unit_path)
        if person is None or not person.active:
            raise Problem(
                422, "unknown-cadre", "You are not (or no longer) registered for the journal."
            )
        await lock_day(session, tenant, cadre_id, day)
        missed = await session.scalar(
            sa.select(sa.literal(True)).where(
                missed_days.c.tenant == tenant,
                missed_days.c.cadre_id == cadre_id,
                missed_days.c.day == day,
            )
        )
        with as_problems():
            check_entry_day(day, local_today, settings.backdate_days, bool(missed))
        refs = tuple(item.ref() for item in batch.files)
        context = ChangeContext.of(request, principal)
        event = EntryPosted(
            **context.envelope(cadre_id, person.unit_path, now),
            data=EntryPostedData(
                entry_id=entry_id, day=day, text=body.text, tags=tags, attachments=refs
            ),
        )
        inserted = await session.execute(
            sa.insert(entries)
            .values(
                tenant=tenant,
                entry_id=entry_id,
                cadre_id=cadre_id,
                unit_id=person.unit_id,
                unit_path=person.unit_path,
                day=day,
                posted_at=now,
                revision=1,
                text=body.text,
                tags=list(tags),
                has_attachment=bool(refs),
                search=_search_vector(body.text, tags),
            )
            .returning(entries)
        )
        seen: set[str] = set()
        for position, item in enumerate(batch.files):
            if item.sha256 in seen:
                continue  # the same file twice in one entry is one attachment
            seen.add(item.sha256)
            await session.execute(
                sa.insert(attachments).values(item.row(tenant, entry_id, position))
            )
        row = inserted.one()
        await append(session, entry_stream(tenant, entry_id), 0, [event])
        return (await entries_out(session, tenant, [row]))[0]


async def _visible_entry(session: AsyncSession, principal: Principal, entry_id: str) -> Any:
    row = (
        await session.execute(
            sa.select(entries).where(
                entries.c.tenant == principal.tenant, entries.c.entry_id == entry_id
            )
        )
    ).first()
    if row is None or not may_view(principal, row.cadre_id, row.unit_path):
        raise Problem(404, "entry-not-found", f"No entry {entry_id!r} that you can see.")
    return row


@router.get(
    "/entries/{entry_id}", response_model=EntryOut, responses={404: {"description": "Not found"}}
)
async def get_entry(entry_id: str, principal: CurrentPrincipal, request: Request) -> EntryOut:
    async with sessions_of(request)() as session:
        row = await _visible_entry(session, principal, entry_id)
        return (await entries_out(session, principal.tenant, [row]))[0]


@router.patch(
    "/entries/{entry_id}",
    response_model=EntryOut,
    responses={403: {"description": "Not the author"}, 409: {"description": "Locked"}},
)
async def edit_entry(
    entry_id: str, body: EntryEdit, principal: CurrentPrincipal, request: Request
) -> EntryOut:
    """Edit the text or tags. The edit is a new revision of `entry_posted`; every earlier
    revision stays readable in the history."""
    settings = settings_of(request)
    tenant = principal.tenant
    async with sessions_of(request)() as session, session.begin():
        row = (
            await session.execute(
                sa.select(entries)
                .where(entries.c.tenant == tenant, entries.c.entry_id == entry_id)
                .with_for_update()
            )
        ).first()
        if row is None or not may_view(principal, row.cadre_id, row.unit_path):
            raise Problem(404, "entry-not-found", f"No entry {entry_id!r} that you can see.")
        with as_problems():
            check_edit(principal, row.cadre_id, row.day, today(request), settings.edit_days)
            tags = check_tags(body.tags) if body.tags is not None else tuple(row.tags)
        text = body.text if body.text is not None else row.text
        if text == row.text and list(tags) == list(row.tags):
            return (await entries_out(session, tenant, [row]))[0]
        files = (
            await session.execute(
                sa.select(attachments)
                .where(attachments.c.tenant == tenant, attachments.c.owner_id == entry_id)
                .order_by(attachments.c.position)
            )
        ).all()
        now = datetime.now(UTC)
        revision = row.revision + 1
        event = EntryPosted(
            **ChangeContext.of(request, principal).envelope(row.cadre_id, row.unit_path, now),
            data=EntryPostedData(
                entry_id=entry_id,
                day=row.day,
                text=text,
                tags=tags,
                revision=revision,
                attachments=tuple(
                    AttachmentRef(
                        sha256=f.sha256,
                        media_type=f.media_type,
                        size_bytes=f.size_bytes,
                        filename=f.filename,
                    )
                    for f in files
                ),
            ),
        )
        await append(session, entry_stream(tenant, entry_id), row.revision, [event])
        updated = await session.execute(
            sa.update(entries)
            .where(entries.c.tenant == tenant, entries.c.entry_id == entry_id)
            .values(
                text=text,
                tags=list(tags),
                revision=revision,
                edited_at=now,
                search=_search_vector(text, tags),
            )
            .returning(entries)
        )
        return (await entries_out(session, tenant, [updated.one()]))[0]


@router.get("/entries/{entry_id}/history", response_model=list[RevisionOut])
async def entry_history(
    entry_id: str, principal: CurrentPrincipal, request: Request
) -> list[RevisionOut]:
    """Every revision of the entry, oldest first, from the event store."""
    async with sessions_of(request)() as session:
        await _visible_entry(session, principal, entry_id)
        events = await read_stream(session, entry_stream(principal.tenant, entry_id))
    return [
        RevisionOut(
            revision=e.data.revision,
            event_id=str(e.id),
            recorded_at=e.recorded_at,
            text=e.data.text,
            tags=list(e.data.tags),
        )
        for e in events
        if isinstance(e, EntryPosted)
    ]


# ------------------------------------------------------------------ feeds and back-check

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


class FeedFilters(BaseModel):
    unit_id: str | None = None
    cadre_id: str | None = None
    from_day: date | None = None
    to_day: date | None = None
    tag: str | None = None
    has_attachment: bool | None = None


def _local_midnight(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(0), ZoneInfo(timezone))


async def _scoped_query(
    session: AsyncSession, principal: Principal, filters: FeedFilters, mine: bool, timezone: str
) -> sa.Select[Any]:
    tenant = principal.tenant
    query = sa.select(entries).where(entries.c.tenant == tenant)
    if mine:
        query = query.where(entries.c.cadre_id == principal.sub)
    elif not can_read_all(principal):
        if not principal.has_any(Role.LEADER):
            query = query.where(entries.c.cadre_id == principal.sub)
        else:
            query = query.where(in_subtree(entries.c.unit_path, principal.unit_path))
    if filters.unit_id is not None:
        path = await REPLICA.unit_path(session, tenant, filters.unit_id)
        if path is None:
            raise Problem(404, "unit-not-found", f"No unit {filters.unit_id!r}.")
        if not (mine or can_read_all(principal) or covers(principal.unit_path, path)):
            raise Problem(403, "outside-scope", "That unit is outside the units you lead.")
        query = query.where(in_subtree(entries.c.unit_path, path))
    if filters.cadre_id is not None:
        query = query.where(entries.c.cadre_id == filters.cadre_id)
    # An entry for day D is posted on D or within the backdate window after it, so a day
    # range also bounds `posted_at`: the feed index then scans only that stretch.
    if filters.from_day is not None:
        query = query.where(
            entries.c.day >= filters.from_day,
            entries.c.posted_at >= _local_midnight(filters.from_day, timezone),
        )
    if filters.to_day is not None:
        query = query.where(
            entries.c.day <= filters.to_day,
            entries.c.posted_at
            < _local_midnight(filters.to_day + timedelta(days=MAX_BACKDATE_DAYS + 1), timezone),
        )
    if filters.tag is not None:
        query = query.where(entries.c.tags.contains([filters.tag]))
    if filters.has_attachment is not None:
        query = query.where(entries.c.has_attachment.is_(filters.has_attachment))
    return query


async def _page(
    session: AsyncSession, query: sa.Select[Any], tenant: str, cursor: str | None, limit: int
) -> Page[EntryOut]:
    if cursor is not None:
        posted_at, entry_id = keyset_after(cursor)
        query = query.where(
            sa.tuple_(entries.c.posted_at, entries.c.entry_id)
            < sa.tuple_(sa.literal(posted_at), sa.literal(entry_id))
        )
    rows = (
        await session.execute(
            query.order_by(entries.c.posted_at.desc(), entries.c.entry_id.desc()).limit(limit + 1)
        )
    ).all()
    page, next_cursor = keyset_page(rows, limit, lambda r: keyset_cursor(r.posted_at, r.entry_id))
    return Page[EntryOut](items=await entries_out(session, tenant, page), next_cursor=next_cursor)


Text = Annotated[str | None, Query(min_length=1, max_length=128)]
Day = Annotated[date | None, day_query()]


def _filters(
    unit_id: Text = None,
    cadre_id: Text = None,
    from_day: Day = None,
    to_day: Day = None,
    tag: Text = None,
    has_attachment: bool | None = None,
) -> FeedFilters:
    """The feed's filters, from the query string (a dependency of the feed routes)."""
    if from_day and to_day and from_day > to_day:
        raise Problem(422, "bad-range", "`from_day` is after `to_day`.")
    return FeedFilters(
        unit_id=unit_id,
        cadre_id=cadre_id,
        from_day=from_day,
        to_day=to_day,
        tag=tag,
        has_attachment=has_attachment,
    )


Filters = Annotated[FeedFilters, Depends(_filters)]


@router.get("/entries", response_model=Page[EntryOut])
async def my_entries(
    principal: CurrentPrincipal,
    request: Request,
    from_day: Day = None,
    to_day: Day = None,
    tag: Text = None,
    has_attachment: bool | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Text = None,
) -> Page[EntryOut]:
    """My own entries, newest first."""
    filters = _filters(None, None, from_day, to_day, tag, has_attachment)
    async with sessions_of(request)() as session:
        query = await _scoped_query(
            session, principal, filters, mine=True, timezone=settings_of(request).default_timezone
        )
        return await _page(session, query, principal.tenant, cursor, limit)


@router.get("/feed", response_model=Page[EntryOut])
async def feed(
    principal: CurrentPrincipal,
    request: Request,
    filters: Filters,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Text = None,
) -> Page[EntryOut]:
    """Entries in the caller's scope, newest first: a leader's subtree, the whole tenant for
    the organisation department, a cadre's own entries."""
    async with sessions_of(request)() as session:
        query = await _scoped_query(
            session, principal, filters, mine=False, timezone=settings_of(request).default_timezone
        )
        return await _page(session, query, principal.tenant, cursor, limit)


STATS_TTL_S = 600.0


async def token_frequencies(request: Request, session: AsyncSession) -> dict[str, float]:
    """PostgreSQL's own statistics of the commonest tokens (refreshed by ANALYZE), cached
    for ten minutes."""
    cached: tuple[float, dict[str, float]] | None = getattr(
        request.app.state, "token_frequencies", None
    )
    now = monotonic()
    if cached is not None and now - cached[0] < STATS_TTL_S:
        return cached[1]
    row = (
        await session.execute(
            sa.text(
                "SELECT most_common_elems::text::text[] AS elems, most_common_elem_freqs AS freqs"
                " FROM pg_stats WHERE tablename = 'entries' AND attname = 'search'"
            )
        )
    ).first()
    frequencies: dict[str, float] = {}
    if row is not None and row.elems is not None:
        frequencies = dict(zip(row.elems, row.freqs, strict=False))
    request.app.state.token_frequencies = (now, frequencies)
    return frequencies


@router.get("/back-check", response_model=Page[EntryOut])
async def back_check(
    principal: CurrentPrincipal,
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=100, description="keywords, e.g. 扶贫")],
    filters: Filters,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Text = None,
) -> Page[EntryOut]:
    """Back-check (倒查): entries in the caller's scope containing every keyword of `q`
    (separated by spaces), newest first. Works on Chinese text."""
    terms = [term for term in q.split() if query_tokens(term)]
    if not terms:
        raise Problem(422, "empty-query", "The query has no letters, digits or characters.")
    async with sessions_of(request)() as session:
        query = await _scoped_query(
            session, principal, filters, mine=False, timezone=settings_of(request).default_timezone
        )
        frequencies = await token_frequencies(request, session)
        tokens = sorted({rarest_token(query_tokens(term), frequencies) for term in terms})
        query = query.where(entries.c.search.op("@@")(sa.cast(tsquery_text(tokens), TSQUERY)))
        for term in terms:
            query = query.where(entries.c.text.ilike(like_pattern(term), escape="\\"))
        return await _page(session, query, principal.tenant, cursor, limit)


# ------------------------------------------------------------------ attachments


async def _visible_attachment(request: Request, principal: Principal, sha256: str) -> Any:
    """An attachment row of an entry or task the caller can see."""
    async with sessions_of(request)() as session:
        rows = (
            await session.execute(
                sa.select(attachments, entries.c.cadre_id, entries.c.unit_path)
                .join(
                    entries,
                    sa.and_(
                        entries.c.tenant == attachments.c.tenant,
                        entries.c.entry_id == attachments.c.owner_id,
                    ),
                    isouter=True,
                )
                .where(attachments.c.tenant == principal.tenant, attachments.c.sha256 == sha256)
            )
        ).all()
        for row in rows:
            if row.cadre_id is not None and may_view(principal, row.cadre_id, row.unit_path):
                return row
            if row.cadre_id is None:  # evidence of a task
                task = (
                    await session.execute(
                        sa.select(tasks.c.cadre_id, tasks.c.unit_path, tasks.c.assigner_id).where(
                            tasks.c.tenant == principal.tenant, tasks.c.task_id == row.owner_id
                        )
                    )
                ).first()
                if task is not None and (
                    principal.sub == task.assigner_id
                    or may_view(principal, task.cadre_id, task.unit_path)
                ):
                    return row
    raise Problem(404, "attachment-not-found", "No attachment with that hash that you can see.")


SHA = Annotated[str, Query(pattern="^[0-9a-f]{64}$")]


@router.get(
    "/attachments/{sha256}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, 404: {"description": "-"}},
)
async def download(sha256: str, principal: CurrentPrincipal, request: Request) -> Response:
    row = await _visible_attachment(request, principal, sha256)
    data = await blobs_of(request).read(sha256)
    if data is None:
        raise Problem(404, "attachment-missing", "The file is not in the blob store.")
    return Response(
        data,
        media_type=row.media_type,
        headers={"Cache-Control": "private, max-age=86400", "ETag": f'"{sha256}"'},
    )


@router.get(
    "/attachments/{sha256}/thumbnail",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "-"}},
)
async def thumbnail(sha256: str, principal: CurrentPrincipal, request: Request) -> Response:
    row = await _visible_attachment(request, principal, sha256)
    if row.thumbnail_sha256 is None:
        raise Problem(404, "no-thumbnail", "This attachment has no thumbnail.")
    data = await blobs_of(request).read(row.thumbnail_sha256)
    if data is None:
        raise Problem(404, "attachment-missing", "The thumbnail is not in the blob store.")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private"})
