"""Token verification: only unexpired tokens for this audience, signed by the key of the
tenant they claim, are accepted."""

from __future__ import annotations

import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cadre.events.auth import (
    JwksVerifier,
    Principal,
    TokenError,
    key_id,
    public_jwk,
    public_keys_from_jwks,
    sign_token,
    verify_token,
)
from cadre.events.vocabulary import LeaderLevel, Role

DEMO_KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()
JWKS = {
    "keys": [public_jwk(DEMO_KEY, key_id("demo", 1)), public_jwk(OTHER_KEY, key_id("other", 1))]
}
KEYS = public_keys_from_jwks(JWKS)
LEADER = Principal(
    sub="u-7",
    tenant="demo",
    unit_path="/demo/county/leye",
    roles=frozenset({Role.CADRE, Role.LEADER}),
    level=LeaderLevel.TOWNSHIP,
)


def test_a_valid_token_gives_back_the_principal() -> None:
    token = sign_token(LEADER, DEMO_KEY, key_id("demo", 1))
    assert verify_token(token, KEYS) == LEADER


def test_an_expired_token_is_refused() -> None:
    token = sign_token(LEADER, DEMO_KEY, key_id("demo", 1), ttl_s=60, now=time.time() - 3600)
    with pytest.raises(TokenError, match="expired"):
        verify_token(token, KEYS)


def test_a_forged_token_is_refused() -> None:
    forged = sign_token(LEADER, Ed25519PrivateKey.generate(), key_id("demo", 1))
    with pytest.raises(TokenError, match="invalid token"):
        verify_token(forged, KEYS)


def test_a_token_for_another_audience_is_refused() -> None:
    token = sign_token(LEADER, DEMO_KEY, key_id("demo", 1), audience="some-other-system")
    with pytest.raises(TokenError, match="another audience"):
        verify_token(token, KEYS)


def test_a_token_claiming_another_tenant_than_its_key_is_refused() -> None:
    # Signed correctly, but with tenant "other"'s key while claiming tenant "demo".
    token = sign_token(LEADER, OTHER_KEY, key_id("other", 1))
    with pytest.raises(TokenError, match="tenant does not match"):
        verify_token(token, KEYS)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c"])
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(TokenError):
        verify_token(garbage, KEYS)


def test_subtree_cover() -> None:
    assert LEADER.covers("/demo/county/leye")
    assert LEADER.covers("/demo/county/leye/village-3")
    assert not LEADER.covers("/demo/county/leyexi")
    assert not LEADER.covers("/demo/county")


async def test_the_verifier_fetches_keys_once_and_refreshes_for_an_unknown_key() -> None:
    fetched: list[str] = []
    current: dict[str, Any] = {"keys": [public_jwk(DEMO_KEY, key_id("demo", 1))]}

    async def fetch(url: str) -> dict[str, Any]:
        fetched.append(url)
        return current

    verifier = JwksVerifier("http://directory/.well-known/jwks.json", fetch=fetch, min_refresh_s=0)
    token = sign_token(LEADER, DEMO_KEY, key_id("demo", 1))
    assert await verifier.verify(token) == LEADER
    assert await verifier.verify(token) == LEADER
    assert len(fetched) == 1

    rotated = Ed25519PrivateKey.generate()
    current = {"keys": [*current["keys"], public_jwk(rotated, key_id("demo", 2))]}
    assert await verifier.verify(sign_token(LEADER, rotated, key_id("demo", 2))) == LEADER
    assert len(fetched) == 2


async def test_a_token_verified_once_still_expires_and_a_key_refresh_forgets_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    current: dict[str, Any] = {"keys": [public_jwk(DEMO_KEY, key_id("demo", 1))]}

    async def fetch(_: str) -> dict[str, Any]:
        return current

    verifier = JwksVerifier("http://directory/.well-known/jwks.json", fetch=fetch, min_refresh_s=0)
    short = sign_token(LEADER, DEMO_KEY, key_id("demo", 1), ttl_s=60)
    assert await verifier.verify(short) == LEADER
    later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(TokenError, match="expired"):
        await verifier.verify(short)
    monkeypatch.undo()

    # The directory drops key 1 (compromised, say): after the refresh its tokens are refused
    # even though one of them was verified before.
    old = sign_token(LEADER, DEMO_KEY, key_id("demo", 1))
    assert await verifier.verify(old) == LEADER
    rotated = Ed25519PrivateKey.generate()
    current = {"keys": [public_jwk(rotated, key_id("demo", 2))]}
    assert await verifier.verify(sign_token(LEADER, rotated, key_id("demo", 2))) == LEADER
    with pytest.raises(TokenError):
        await verifier.verify(old)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "no-dots-at-all",
        "!!!.payload.signature",
        "W10.payload.signature",  # a JSON list, not an object
        "eyJhbGciOiJFZERTQSJ9",  # a header and nothing else
    ],
)
def test_a_malformed_token_is_refused_as_such(token: str) -> None:
    with pytest.raises(TokenError, match="malformed token"):
        verify_token(token, KEYS)


def test_a_readable_header_does_not_excuse_a_broken_rest() -> None:
    header = sign_token(LEADER, DEMO_KEY, key_id("demo", 1)).split(".")[0]
    with pytest.raises(TokenError, match="invalid token"):
        verify_token(f"{header}.!!!.???", KEYS)
