"""Tokens: the claims every service relies on, and local verification against the
directory's JWKS (DESIGN section 9). Directory signs with one Ed25519 key per tenant; the
key id names the tenant (`<tenant>.<n>`), so a token claiming one tenant but signed with
another tenant's key is refused."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, Request
from jwt.algorithms import OKPAlgorithm

from cadre.events.problems import Problem
from cadre.events.units import covers
from cadre.events.vocabulary import LeaderLevel, Role

AUDIENCE = "cadre-platform"
ISSUER = "cadre-directory"
ALGORITHM = "EdDSA"
LEEWAY_S = 30


class TokenError(Exception):
    """The token is not acceptable; the message says why (never which secret was wrong)."""


@dataclass(frozen=True)
class Principal:
    sub: str
    tenant: str
    unit_path: str
    roles: frozenset[Role]
    level: LeaderLevel | None = None

    def has_any(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    def covers(self, unit_path: str) -> bool:
        """True when `unit_path` is this principal's unit or below it."""
        return covers(self.unit_path, unit_path)


def key_id(tenant: str, serial: int) -> str:
    return f"{tenant}.{serial}"


def tenant_of_key(kid: str) -> str:
    return kid.rsplit(".", 1)[0]


def verify_token(
    token: str,
    public_keys: Mapping[str, Any],
    *,
    audience: str = AUDIENCE,
    issuer: str = ISSUER,
    now: float | None = None,
) -> Principal:
    """Check signature, expiry, audience, issuer and tenant; return who is calling."""
    return verify_token_until(token, public_keys, audience=audience, issuer=issuer, now=now)[0]


def verify_token_until(
    token: str,
    public_keys: Mapping[str, Any],
    *,
    audience: str = AUDIENCE,
    issuer: str = ISSUER,
    now: float | None = None,
) -> tuple[Principal, float]:
    """`verify_token`, and the token's expiry (`exp`, epoch seconds)."""
    header = _unverified_header(token)
    kid = header.get("kid")
    if header.get("alg") != ALGORITHM or not isinstance(kid, str):
        raise TokenError("unsupported token algorithm or missing key id")
    key = public_keys.get(kid)
    if key is None:
        raise TokenError("token signed with an unknown key")
    try:
        # Expiry is checked here against `now`, so tests can move the clock.
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            options={"verify_exp": False, "require": ["exp", "iat", "sub", "aud", "iss"]},
        )
        if claims["exp"] + LEEWAY_S < (time.time() if now is None else now):
            raise jwt.ExpiredSignatureError("token expired")
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise TokenError("token is for another audience") from exc
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid token: {exc}") from exc
    tenant = claims.get("tenant")
    if not isinstance(tenant, str) or tenant_of_key(kid) != tenant:
        raise TokenError("token tenant does not match its signing key")
    try:
        principal = Principal(
            sub=str(claims["sub"]),
            tenant=tenant,
            unit_path=str(claims["unit_path"]),
            roles=frozenset(Role(r) for r in claims.get("roles", [])),
            level=LeaderLevel(claims["level"]) if claims.get("level") else None,
        )
        return principal, float(claims["exp"])
    except (KeyError, ValueError) as exc:
        raise TokenError(f"token claims are incomplete: {exc}") from exc


def _unverified_header(token: str) -> dict[str, Any]:
    """The header, only to pick the key; `jwt.decode` then checks the whole token. PyJWT's
    own `get_unverified_header` checks every character of all three parts in Python first,
    as `jwt.decode` does again: about half of a token's first verification."""
    encoded, _, rest = token.partition(".")
    if not rest or len(encoded) > 4096:
        raise TokenError("malformed token")
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise TokenError("malformed token") from exc
    if not isinstance(header, dict):
        raise TokenError("malformed token")
    return header


def public_keys_from_jwks(jwks: Mapping[str, Any]) -> dict[str, Any]:
    keys = {}
    for jwk in jwks.get("keys", []):
        if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519" and "kid" in jwk:
            keys[jwk["kid"]] = OKPAlgorithm.from_jwk(jwk)
    return keys


VERIFIED_TOKENS_KEPT = 50_000  # about 20 MB at most; the oldest are checked afresh


class JwksVerifier:
    """Verifies tokens locally against a JWKS fetched from the directory and cached. An
    unknown key id triggers one refresh (at most every `min_refresh_s`), so rotated keys are
    picked up without restarts."""

    def __init__(
        self,
        jwks_url: str,
        *,
        audience: str = AUDIENCE,
        min_refresh_s: float = 30.0,
        fetch: Callable[[str], Awaitable[Mapping[str, Any]]] | None = None,
    ) -> None:
        self.jwks_url = jwks_url
        self.audience = audience
        self._min_refresh_s = min_refresh_s
        self._fetch = fetch or _fetch_jwks
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        # A phone sends the same token for an hour: checking its signature once is enough
        # (verification was a tenth of a check-in's time, profiled). Expiry is still checked
        # on every use, and a key refresh forgets everything verified with the old keys.
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        remembered = self._verified.get(token)
        if remembered is not None:
            principal, expires_at = remembered
            if expires_at + LEEWAY_S >= time.time():
                return principal
            del self._verified[token]
            raise TokenError("token expired")
        try:
            principal, expires_at = verify_token_until(token, self._keys, audience=self.audience)
        except TokenError as first:
            if "unknown key" not in str(first):
                raise
            await self._refresh()
            principal, expires_at = verify_token_until(token, self._keys, audience=self.audience)
        self._verified[token] = (principal, expires_at)
        if len(self._verified) > VERIFIED_TOKENS_KEPT:
            self._verified.popitem(last=False)
        return principal

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at < self._min_refresh_s:
                return
            try:
                self._keys = public_keys_from_jwks(await self._fetch(self.jwks_url))
                self._verified.clear()
            except (httpx.HTTPError, ValueError) as exc:
                raise TokenError(f"cannot fetch signing keys: {type(exc).__name__}") from exc
            finally:
                self._fetched_at = time.monotonic()


async def _fetch_jwks(url: str) -> Mapping[str, Any]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(url)
        response.raise_for_status()
        jwks: Mapping[str, Any] = response.json()
        return jwks


def bearer_token(request: Request, allow_query: bool = False) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if allow_query and not header and request.query_params.get("access_token"):
        # Browsers' EventSource cannot send headers; streams accept ?access_token= instead.
        return request.query_params["access_token"].strip()
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "missing-token",
            "Send Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": 'Bearer realm="cadre"'},
        )
    return token.strip()


def principal_dependency(
    verifier_for: Callable[[Request], Callable[[str], Awaitable[Principal]]],
    allow_query: bool = False,
) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency answering 401 problem+json for any unacceptable token;
    `verifier_for(request)` gives the verify function (usually from the app's state)."""

    async def current_principal(request: Request) -> Principal:
        token = bearer_token(request, allow_query)
        try:
            return await verifier_for(request)(token)
        except TokenError as exc:
            raise Problem(
                401,
                "invalid-token",
                str(exc),
                headers={"WWW-Authenticate": 'Bearer realm="cadre", error="invalid_token"'},
            ) from exc

    return current_principal


def directory_verifier(request: Request) -> JwksVerifier:
    """The app's verifier of the directory's tokens, made on first use from the service's
    `directory_url` setting (tests may put their own on `app.state.verifier`)."""
    app = request.app
    if getattr(app.state, "verifier", None) is None:
        url = app.state.runtime.settings.directory_url
        app.state.verifier = JwksVerifier(url.rstrip("/") + "/.well-known/jwks.json")
    verifier: JwksVerifier = app.state.verifier
    return verifier


# The caller, from a directory-signed bearer token; for every service but the directory.
CurrentPrincipal = Annotated[
    Principal, Depends(principal_dependency(lambda request: directory_verifier(request).verify))
]
# The same for event streams, which also take the token as `?access_token=`.
StreamPrincipal = Annotated[
    Principal,
    Depends(
        principal_dependency(lambda request: directory_verifier(request).verify, allow_query=True)
    ),
]


def sign_token(
    principal: Principal,
    private_key: Ed25519PrivateKey,
    kid: str,
    *,
    ttl_s: int = 3600,
    audience: str = AUDIENCE,
    now: float | None = None,
) -> str:
    """Issue a token for `principal` (the directory's job; shared so tests mint real ones)."""
    issued_at = int(time.time() if now is None else now)
    claims = {
        "sub": principal.sub,
        "tenant": principal.tenant,
        "unit_path": principal.unit_path,
        "roles": sorted(role.value for role in principal.roles),
        "level": principal.level.value if principal.level else None,
        "iss": ISSUER,
        "aud": audience,
        "iat": issued_at,
        "exp": issued_at + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, private_key, algorithm=ALGORITHM, headers={"kid": kid})


def public_jwk(private_key: Ed25519PrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(OKPAlgorithm.to_jwk(private_key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": ALGORITHM}
