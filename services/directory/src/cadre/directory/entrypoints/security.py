"""Directory's side of auth: it verifies its own tokens against the keys in its database,
and hashes credentials with argon2."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Request

from cadre.directory.adapters.keys import jwks
from cadre.events.auth import JwksVerifier, principal_dependency

HASHER = PasswordHasher()
# Compared against when the username is unknown, so both paths cost the same time.
_DUMMY_HASH = HASHER.hash("not a real password")


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def password_ok(password: str, password_hash: str | None) -> bool:
    try:
        return HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def verifier_for(request: Request) -> JwksVerifier:
    app = request.app
    if getattr(app.state, "verifier", None) is None:

        async def from_database(_: str) -> Mapping[str, Any]:
            async with app.state.sessions() as session:
                return await jwks(session)

        app.state.verifier = JwksVerifier("database", fetch=from_database, min_refresh_s=1.0)
    verifier: JwksVerifier = app.state.verifier
    return verifier


current_principal = principal_dependency(lambda request: verifier_for(request).verify)
