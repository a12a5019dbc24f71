"""Per-tenant webhook subscriptions (organisation-department administrators), and the
delivery log of webhooks and emails with a manual redeliver."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AnyHttpUrl, BaseModel, Field, field_validator

from cadre.events.auth import CurrentPrincipal, Principal
from cadre.events.catalogue import EVENT_TYPES
from cadre.events.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Page,
    invalid_cursor,
    keyset_after,
    keyset_cursor,
    keyset_page,
)
from cadre.events.problems import Problem
from cadre.events.service import request_sessions
from cadre.events.vocabulary import ADMIN_ROLES
from cadre.notify.adapters.deliveries import redeliver
from cadre.notify.adapters.tables import deliveries, delivery_attempts, webhooks
from cadre.notify.domain.webhooks import ANY_TYPE

router = APIRouter(tags=["webhooks and deliveries"])
MAX_SUBSCRIPTIONS = 50


def administrator(principal: CurrentPrincipal) -> Principal:
    if not principal.has_any(*ADMIN_ROLES):
        raise Problem(403, "not-an-administrator", "Only the organisation department manages this.")
    return principal


Admin = Annotated[Principal, Depends(administrator)]


class NewWebhook(BaseModel):
    url: AnyHttpUrl
    event_types: list[str] = Field(
        min_length=1,
        max_length=100,
        description="event types such as `scoring.light_changed`, `journal.*`, or `*`",
    )
    description: str = Field("", max_length=500)
    secret: str | None = Field(
        None, min_length=16, max_length=200, description="made for you when left out"
    )

    @field_validator("event_types")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        sources = {t.split(".")[0] for t in EVENT_TYPES}
        for wanted in value:
            if wanted == ANY_TYPE or wanted in EVENT_TYPES:
                continue
            if wanted.endswith(".*") and wanted[:-2] in sources:
                continue
            raise ValueError(f"unknown event type {wanted!r}")
        return sorted(set(value))


class Webhook(BaseModel):
    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str
    active: bool
    created_at: datetime
    created_by: str
    secret: str | None = Field(None, description="shown once, when the subscription is made")


def _webhook(row: Any, secret: str | None = None) -> Webhook:
    return Webhook(
        id=row.subscription_id,
        url=row.url,
        event_types=list(row.event_types),
        description=row.description,
        active=row.active,
        created_at=row.created_at,
        created_by=row.created_by,
        secret=secret,
    )


@router.post("/webhooks", status_code=201, summary="Subscribe a URL to event types")
async def create_webhook(request: Request, principal: Admin, body: NewWebhook) -> Webhook:
    secret = body.secret or "whsec_" + secrets.token_urlsafe(32)
    async with request_sessions(request)() as session, session.begin():
        count = await session.scalar(
            sa.select(sa.func.count())
            .select_from(webhooks)
            .where(webhooks.c.tenant == principal.tenant, webhooks.c.active)
        )
        if (count or 0) >= MAX_SUBSCRIPTIONS:
            raise Problem(409, "too-many-webhooks", f"A tenant has at most {MAX_SUBSCRIPTIONS}.")
        row = (
            await session.execute(
                sa.insert(webhooks)
                .values(
                    subscription_id=uuid.uuid4(),
                    tenant=principal.tenant,
                    url=str(body.url),
                    secret=secret,
                    event_types=body.event_types,
                    description=body.description,
                    active=True,
                    created_by=principal.sub,
                    created_at=datetime.now(UTC),
                )
                .returning(webhooks)
            )
        ).one()
    return _webhook(row, secret)


@router.get("/webhooks", summary="The tenant's webhook subscriptions")
async def list_webhooks(request: Request, principal: Admin) -> list[Webhook]:
    async with request_sessions(request)() as session:
        rows = (
            await session.execute(
                sa.select(webhooks)
                .where(webhooks.c.tenant == principal.tenant)
                .order_by(webhooks.c.created_at)
            )
        ).all()
    return [_webhook(r) for r in rows]


@router.delete(
    "/webhooks/{subscription_id}",
    status_code=204,
    summary="Stop a subscription (its delivery log stays)",
    responses={404: {"description": "No such subscription"}},
)
async def delete_webhook(
    subscription_id: uuid.UUID, request: Request, principal: Admin
) -> Response:
    async with request_sessions(request)() as session, session.begin():
        found = await session.scalar(
            sa.update(webhooks)
            .where(
                webhooks.c.subscription_id == subscription_id,
                webhooks.c.tenant == principal.tenant,
            )
            .values(active=False)
            .returning(webhooks.c.subscription_id)
        )
        if found is None:
            raise Problem(404, "webhook-not-found", "No such webhook subscription.")
        # What was still waiting for it is not sent any more.
        await session.execute(
            sa.update(deliveries)
            .where(
                deliveries.c.subscription_id == subscription_id, deliveries.c.status == "pending"
            )
            .values(status="dead", last_error="the subscription was removed")
        )
    return Response(status_code=204)


Status = Literal["pending", "held", "sending", "delivered", "dead", "uncertain", "digested"]


class Attempt(BaseModel):
    attempt: int
    at: datetime
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float


class Delivery(BaseModel):
    id: uuid.UUID
    channel: Literal["email", "webhook"]
    status: Status
    target: str
    subject: str
    event_type: str
    event_id: str | None
    subscription_id: uuid.UUID | None
    recipient_id: str | None
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[Attempt] = Field(default_factory=list)


def _delivery(row: Any, log: list[Attempt] | None = None) -> Delivery:
    return Delivery(
        id=row.delivery_id,
        channel=row.channel,
        status=row.status,
        target=row.target,
        subject=row.subject,
        event_type=row.event_type,
        event_id=row.event_id,
        subscription_id=row.subscription_id,
        recipient_id=row.recipient_id,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        attempt_log=log or [],
    )


@router.get("/deliveries", summary="The delivery log, newest first")
async def list_deliveries(
    request: Request,
    principal: Admin,
    channel: Literal["email", "webhook"] | None = None,
    status: Status | None = None,
    subscription_id: uuid.UUID | None = None,
    cursor: str | None = Query(None, description="`next_cursor` of the previous page"),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
) -> Page[Delivery]:
    query = sa.select(deliveries).where(deliveries.c.tenant == principal.tenant)
    if channel is not None:
        query = query.where(deliveries.c.channel == channel)
    if status is not None:
        query = query.where(deliveries.c.status == status)
    if subscription_id is not None:
        query = query.where(deliveries.c.subscription_id == subscription_id)
    if cursor is not None:
        created, last_id = keyset_after(cursor)
        try:
            after_id = uuid.UUID(last_id)
        except ValueError:
            raise invalid_cursor() from None
        query = query.where(
            sa.tuple_(deliveries.c.created_at, deliveries.c.delivery_id) < (created, after_id)
        )
    async with request_sessions(request)() as session:
        rows = (
            await session.execute(
                query.order_by(
                    deliveries.c.created_at.desc(), deliveries.c.delivery_id.desc()
                ).limit(limit + 1)
            )
        ).all()
    page, next_cursor = keyset_page(
        rows, limit, lambda r: keyset_cursor(r.created_at, str(r.delivery_id))
    )
    return Page(items=[_delivery(r) for r in page], next_cursor=next_cursor)


@router.get(
    "/deliveries/{delivery_id}",
    summary="One delivery with every attempt",
    responses={404: {"description": "No such delivery"}},
)
async def get_delivery(delivery_id: uuid.UUID, request: Request, principal: Admin) -> Delivery:
    async with request_sessions(request)() as session:
        row = (
            await session.execute(
                sa.select(deliveries).where(
                    deliveries.c.delivery_id == delivery_id, deliveries.c.tenant == principal.tenant
                )
            )
        ).first()
        if row is None:
            raise Problem(404, "delivery-not-found", "No such delivery.")
        attempts = (
            await session.execute(
                sa.select(delivery_attempts)
                .where(delivery_attempts.c.delivery_id == delivery_id)
                .order_by(delivery_attempts.c.attempt)
            )
        ).all()
    log = [
        Attempt(
            attempt=a.attempt,
            at=a.at,
            ok=a.ok,
            status_code=a.status_code,
            error=a.error,
            duration_ms=a.duration_ms,
        )
        for a in attempts
    ]
    return _delivery(row, log)


@router.post(
    "/deliveries/{delivery_id}/redeliver",
    status_code=202,
    summary="Send a delivery again (dead, uncertain or delivered ones)",
    responses={404: {"description": "No such delivery"}, 409: {"description": "Still under way"}},
)
async def redeliver_one(delivery_id: uuid.UUID, request: Request, principal: Admin) -> Delivery:
    async with request_sessions(request)() as session, session.begin():
        row = await redeliver(session, principal.tenant, delivery_id, datetime.now(UTC))
        if row is None:
            exists = await session.scalar(
                sa.select(deliveries.c.status).where(
                    deliveries.c.delivery_id == delivery_id, deliveries.c.tenant == principal.tenant
                )
            )
            if exists is None:
                raise Problem(404, "delivery-not-found", "No such delivery.")
            raise Problem(
                409, "delivery-in-progress", f"The delivery is {exists}; it is still under way."
            )
    return _delivery(row)
