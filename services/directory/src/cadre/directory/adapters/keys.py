"""Token signing keys: one Ed25519 key per tenant, made on first use and kept in the
directory's database; their public halves are the JWKS."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cadre.directory.adapters.tables import signing_keys
from cadre.events.auth import key_id, public_jwk


async def signing_key(session: AsyncSession, tenant: str) -> tuple[str, Ed25519PrivateKey]:
    """The tenant's newest key, created (race-safely) when it has none."""
    row = (
        await session.execute(
            sa.select(signing_keys.c.kid, signing_keys.c.private_pem)
            .where(signing_keys.c.tenant == tenant)
            .order_by(signing_keys.c.created_at.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        await session.execute(
            insert(signing_keys)
            .values(kid=key_id(tenant, 1), tenant=tenant, private_pem=pem)
            .on_conflict_do_nothing()
        )
        return await signing_key(session, tenant)
    loaded = serialization.load_pem_private_key(row.private_pem, password=None)
    assert isinstance(loaded, Ed25519PrivateKey)
    return row.kid, loaded


async def jwks(session: AsyncSession) -> dict[str, Any]:
    rows = (await session.execute(sa.select(signing_keys.c.kid, signing_keys.c.private_pem))).all()
    keys = []
    for row in rows:
        loaded = serialization.load_pem_private_key(row.private_pem, password=None)
        assert isinstance(loaded, Ed25519PrivateKey)
        keys.append(public_jwk(loaded, row.kid))
    return {"keys": keys}
