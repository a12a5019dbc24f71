"""Writing notifications: each once (its id is derived from its cause), rendered in the
recipient's language, numbered per recipient for the live stream, and queued for email
according to the recipient's preferences. Live listeners are woken when the transaction
commits (PostgreSQL NOTIFY is transactional)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cadre.notify.adapters.recipients import names
from cadre.notify.adapters.tables import deliveries, notifications, preferences, recipient_seq
from cadre.notify.domain.kinds import Channel, Kind, delivery_id, notification_id
from cadre.notify.domain.preferences import Preferences, release_time
from cadre.notify.domain.templates import email_text, render

INBOX_CHANNEL = "notify_inbox"
PEOPLE_PARAMS = ("cadre", "mentor", "requester", "assigner", "assignee", "reactor", "approver")


@dataclass(frozen=True)
class Draft:
    tenant: str
    recipient: str
    kind: Kind
    source: str  # the event id, or a reminder's key
    source_type: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def notification_id(self) -> uuid.UUID:
        return notification_id(self.tenant, self.source, self.kind, self.recipient)


async def load_preferences(
    session: AsyncSession, tenant: str, recipients: Sequence[str]
) -> dict[str, Preferences]:
    rows = await session.execute(
        sa.select(preferences.c.cadre_id, preferences.c.prefs).where(
            preferences.c.tenant == tenant, preferences.c.cadre_id.in_(sorted(set(recipients)))
        )
    )
    return {r.cadre_id: Preferences.model_validate(r.prefs) for r in rows}


def _local_minutes(value: str, zone: ZoneInfo) -> str:
    return datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M")


async def _with_names(
    session: AsyncSession, tenant: str, drafts: Sequence[Draft], zone: ZoneInfo
) -> list[dict[str, Any]]:
    ids = [
        d.params[f"{key}_id"]
        for d in drafts
        for key in PEOPLE_PARAMS
        if isinstance(d.params.get(f"{key}_id"), str)
    ]
    known = await names(session, tenant, ids)
    enriched = []
    for draft in drafts:
        params = dict(draft.params)
        for key in PEOPLE_PARAMS:
            person = params.get(f"{key}_id")
            if isinstance(person, str) and person in known:
                params[f"{key}_name"] = known[person]
        if isinstance(params.get("due_at"), str):
            params["due_local"] = _local_minutes(params["due_at"], zone)
        enriched.append(params)
    return enriched


async def write_notifications(
    session: AsyncSession,
    drafts: Sequence[Draft],
    now: datetime,
    zone_of: Callable[[str], ZoneInfo],
    email_enabled: bool,
) -> int:
    """Store the drafts not stored before; returns how many were new."""
    unique = {d.notification_id: d for d in drafts}
    if not unique:
        return 0
    existing = set(
        await session.scalars(
            sa.select(notifications.c.notification_id).where(
                notifications.c.notification_id.in_(list(unique))
            )
        )
    )
    by_recipient: dict[tuple[str, str], list[Draft]] = defaultdict(list)
    for nid, draft in unique.items():
        if nid not in existing:
            by_recipient[(draft.tenant, draft.recipient)].append(draft)
    written = 0
    # Sorted, so concurrent writers take the per-recipient locks in one order (no deadlock).
    for tenant in sorted({t for t, _ in by_recipient}):
        zone = zone_of(tenant)
        recipients = sorted(r for t, r in by_recipient if t == tenant)
        prefs = await load_preferences(session, tenant, recipients)
        for recipient in recipients:
            group = by_recipient[(tenant, recipient)]
            written += await _write_for_recipient(
                session,
                tenant,
                recipient,
                group,
                prefs.get(recipient, Preferences()),
                now,
                zone,
                email_enabled,
            )
    return written


async def _write_for_recipient(
    session: AsyncSession,
    tenant: str,
    recipient: str,
    group: list[Draft],
    prefs: Preferences,
    now: datetime,
    zone: ZoneInfo,
    email_enabled: bool,
) -> int:
    last = await session.scalar(
        insert(recipient_seq)
        .values(tenant=tenant, cadre_id=recipient, last_seq=len(group))
        .on_conflict_do_update(
            index_elements=["tenant", "cadre_id"],
            set_={"last_seq": recipient_seq.c.last_seq + len(group)},
        )
        .returning(recipient_seq.c.last_seq)
    )
    assert last is not None
    first = last - len(group) + 1
    all_params = await _with_names(session, tenant, group, zone)
    written = 0
    for offset, (draft, params) in enumerate(zip(group, all_params, strict=True)):
        channels = prefs.channels_for(draft.kind)
        rendered = render(draft.kind, params, prefs.language)
        inserted = await session.scalar(
            insert(notifications)
            .values(
                notification_id=draft.notification_id,
                tenant=tenant,
                recipient_id=recipient,
                seq=first + offset,
                kind=draft.kind.value,
                title=rendered.title,
                body=rendered.body,
                params=params,
                source=draft.source,
                source_type=draft.source_type,
                live=Channel.LIVE in channels,
                created_at=now,
            )
            .on_conflict_do_nothing()
            .returning(notifications.c.notification_id)
        )
        if inserted is None:
            continue  # another writer got there first
        written += 1
        if email_enabled and Channel.EMAIL in channels and prefs.email:
            mail = email_text(draft.kind, params, prefs.language)
            send_at = release_time(now.astimezone(zone), prefs.quiet_hours)
            await session.execute(
                insert(deliveries)
                .values(
                    delivery_id=delivery_id(str(draft.notification_id), Channel.EMAIL.value),
                    tenant=tenant,
                    channel=Channel.EMAIL.value,
                    notification_id=draft.notification_id,
                    recipient_id=recipient,
                    event_id=draft.source,
                    event_type=draft.kind.value,
                    target=prefs.email,
                    subject=mail.title,
                    payload=mail.body,
                    status="held" if prefs.digest else "pending",
                    next_attempt_at=send_at,
                    created_at=now,
                )
                .on_conflict_do_nothing()
            )
    if written:
        await session.execute(sa.select(sa.func.pg_notify(INBOX_CHANNEL, f"{tenant}/{recipient}")))
    return written
