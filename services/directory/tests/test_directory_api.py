"""The directory over HTTP on the real PostgreSQL and Kafka: tokens, scoping, bulk import
and the directory.* events each change publishes."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from openpyxl import Workbook

from cadre.devstack.infra import Infra, create_databases, drop_database
from cadre.devstack.testing import read_topic
from cadre.directory.entrypoints.app import create_app
from cadre.directory.entrypoints.demo import demo_people, load_demo
from cadre.directory.settings import DirectorySettings
from cadre.events.auth import (
    AUDIENCE,
    JwksVerifier,
    Principal,
    key_id,
    public_keys_from_jwks,
    sign_token,
    verify_token,
)
from cadre.events.consumer import InboundRecord
from cadre.events.db import migrate_async
from cadre.events.units import covers
from cadre.events.vocabulary import LeaderLevel, Role
from cadre.events.wire import decode, header_map

pytestmark = [pytest.mark.integration]
MIGRATIONS = "cadre.directory.adapters.migrations"


@pytest_asyncio.fixture(scope="module")
async def directory(infra: Infra, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    """A directory app (with its relay) on a fresh database, with the demo tenant loaded;
    shared by this module's tests, which each use their own ids."""
    name = f"directory_{uuid.uuid4().hex[:8]}"
    admin = infra.pg_url("postgres", "postgresql")
    await create_databases(admin, [name])
    url = infra.pg_url(name)
    await migrate_async(MIGRATIONS, url)
    settings = DirectorySettings(
        database_url=url, kafka_bootstrap=kafka_bootstrap, relay_poll_interval_s=0.2
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert await load_demo(app.state.runtime) > 0
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://directory") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client
    await drop_database(admin, name)


async def login(
    client: httpx.AsyncClient,
    username: str,
    password: str = "demo",  # noqa: S107 (demo login)
) -> dict[str, str]:
    response = await client.post(
        "/v1/auth/token", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_a_token_carries_the_claims_and_verifies_against_the_served_jwks(
    directory: httpx.AsyncClient,
) -> None:
    response = await directory.post(
        "/v1/auth/token", json={"username": "township.leader", "password": "demo"}
    )
    body = response.json()
    assert body["token_type"] == "bearer"  # noqa: S105
    jwks = (await directory.get("/.well-known/jwks.json")).json()
    principal = verify_token(body["access_token"], public_keys_from_jwks(jwks))
    assert principal == Principal(
        sub="township-leader",
        tenant="demo",
        unit_path="/demo/wangmo/leye",
        roles=frozenset({Role.CADRE, Role.LEADER}),
        level=LeaderLevel.TOWNSHIP,
    )

    async def fetch(_: str) -> dict[str, Any]:
        result: dict[str, Any] = (await directory.get("/.well-known/jwks.json")).json()
        return result

    assert await JwksVerifier("jwks", fetch=fetch).verify(body["access_token"]) == principal


async def test_wrong_password_and_unknown_user_get_the_same_401(
    directory: httpx.AsyncClient,
) -> None:
    for username, password in (("cadre1", "wrong"), ("nobody", "demo")):
        response = await directory.post(
            "/v1/auth/token", json={"username": username, "password": password}
        )
        assert response.status_code == 401
        assert response.json()["code"] == "invalid-credentials"
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_expired_forged_wrong_audience_and_wrong_tenant_tokens_get_401(
    directory: httpx.AsyncClient,
) -> None:
    genuine = (await login(directory, "cadre1"))["Authorization"]  # makes the tenant's key
    jwks = (await directory.get("/.well-known/jwks.json")).json()
    assert [k["kid"] for k in jwks["keys"]] == ["demo.1"]
    who = Principal(
        sub="cadre1",
        tenant="demo",
        unit_path="/demo/wangmo/leye/leye-v1",
        roles=frozenset({Role.CADRE}),
    )
    stranger = Ed25519PrivateKey.generate()
    assert (await directory.get("/v1/me", headers={"Authorization": genuine})).status_code == 200

    # Mint tokens the directory would never issue; only its private key can make them valid.
    async with directory.app.state.sessions() as session:  # type: ignore[attr-defined]
        from cadre.directory.adapters.keys import signing_key

        kid, key = await signing_key(session, "demo")
    tokens = {
        "expired": sign_token(who, key, kid, now=time.time() - 10 * 3600),
        "forged": sign_token(who, stranger, kid),
        "wrong audience": sign_token(who, key, kid, audience="not-" + AUDIENCE),
        "wrong tenant": sign_token(Principal(**{**who.__dict__, "tenant": "other"}), key, kid),
        "unknown tenant key": sign_token(
            Principal(**{**who.__dict__, "tenant": "other"}), stranger, key_id("other", 1)
        ),
        "garbage": "not.a.token",
    }
    for name, token in tokens.items():
        response = await directory.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.json()["code"] == "invalid-token", name
    missing = await directory.get("/v1/me")
    assert missing.status_code == 401
    assert missing.json()["code"] == "missing-token"


async def test_reads_are_scoped_admins_all_leaders_their_subtree_cadres_themselves(
    directory: httpx.AsyncClient,
) -> None:
    async def visible(username: str) -> set[str]:
        response = await directory.get(
            "/v1/cadres?limit=500", headers=await login(directory, username)
        )
        return {c["cadre_id"] for c in response.json()["items"]}

    everyone = await visible("orgadmin")
    assert {p["cadre_id"] for p in demo_people()} <= everyone
    township = await visible("township.leader")
    assert "township-leader" in township
    assert "cadre1" in township
    assert "cadre3" not in township, "cadre3 is in pingle, outside the leye subtree"
    assert await visible("cadre1") == {"cadre1"}
    hidden = await directory.get("/v1/cadres/cadre2", headers=await login(directory, "cadre1"))
    assert hidden.status_code == 404

    async def in_unit(username: str, unit_id: str) -> set[str]:
        response = await directory.get(
            "/v1/cadres",
            params={"limit": 500, "unit_id": unit_id},
            headers=await login(directory, username),
        )
        assert response.status_code == 200, response.text
        return {c["cadre_id"] for c in response.json()["items"]}

    pingle = await in_unit("orgadmin", "pingle")
    assert "cadre3" in pingle
    assert pingle.isdisjoint(township), "leye and pingle share no one"
    # The filter narrows what the caller may see; it never widens it.
    assert await in_unit("township.leader", "pingle") == set()
    assert await in_unit("township.leader", "leye-v1") <= township
    assert await in_unit("cadre1", "leye") == {"cadre1"}
    unknown = await directory.get(
        "/v1/cadres", params={"unit_id": "nowhere"}, headers=await login(directory, "orgadmin")
    )
    assert unknown.status_code == 404


async def test_units_come_in_tree_order_a_page_at_a_time_within_the_callers_scope(
    directory: httpx.AsyncClient,
) -> None:
    async def walk(username: str) -> list[str]:
        headers = await login(directory, username)
        paths: list[str] = []
        cursor = None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = await directory.get("/v1/units", params=params, headers=headers)
            assert page.status_code == 200, page.text
            paths += [u["path"] for u in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return paths

    everything = await walk("orgadmin")
    assert everything == sorted(everything)
    assert len(everything) == len(set(everything)) >= 6
    leye = next(p for p in everything if p.endswith("/leye"))
    assert await walk("township.leader") == [p for p in everything if covers(leye, p)]


async def test_pagination_walks_every_cadre_once(directory: httpx.AsyncClient) -> None:
    headers = await login(directory, "orgadmin")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = (await directory.get("/v1/cadres", params=params, headers=headers)).json()
        seen += [c["cadre_id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    everyone = (await directory.get("/v1/cadres?limit=500", headers=headers)).json()["items"]
    assert len(seen) == len(set(seen))
    assert set(seen) == {c["cadre_id"] for c in everyone}
    assert len(seen) >= 24


def _xlsx(rows: list[list[str]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


PEOPLE_HEADER = [
    "cadre_id",
    "username",
    "name",
    "unit_id",
    "rank",
    "leader_level",
    "stationed",
    "roles",
    "password",
]


async def _directory_events(
    kafka_bootstrap: str, tenant_marker: str, count: int
) -> list[InboundRecord]:
    def ours(records: list[InboundRecord]) -> list[InboundRecord]:
        return [r for r in records if tenant_marker in header_map(r.headers).get("ce_subject", "")]

    records = await read_topic(
        kafka_bootstrap, "directory.events.v1", until=lambda rs: len(ours(rs)) >= count
    )
    return ours(records)


async def test_bulk_import_is_all_or_nothing_with_row_errors_then_idempotent(
    directory: httpx.AsyncClient, kafka_bootstrap: str
) -> None:
    headers = await login(directory, "orgadmin")
    marker = uuid.uuid4().hex[:6]
    good = [
        PEOPLE_HEADER,
        [f"n1-{marker}", f"new1.{marker}", "新人一", "leye", "科员", "", "no", "", "secret1"],
        [f"n2-{marker}", f"new2.{marker}", "新人二", "pingle", "", "", "yes", "", ""],
    ]
    bad = [*good, [f"n3-{marker}", f"new3.{marker}", "", "mars", "", "emperor", "maybe", "", ""]]

    rejected = await directory.post(
        "/v1/imports/people", headers=headers, files={"file": ("people.xlsx", _xlsx(bad))}
    )
    assert rejected.status_code == 422
    problem = rejected.json()
    assert problem["code"] == "import-rejected"
    assert {(e["row"], e["column"]) for e in problem["errors"]} == {
        (4, "name"),
        (4, "unit_id"),
        (4, "leader_level"),
        (4, "stationed"),
    }
    listed = (await directory.get("/v1/cadres?limit=500", headers=headers)).json()["items"]
    assert not any(marker in c["cadre_id"] for c in listed), "a rejected file writes nothing"

    csv_text = "\n".join(",".join(row) for row in good).encode("utf-8-sig")
    dry = await directory.post(
        "/v1/imports/people?dry_run=true", headers=headers, files={"file": ("people.csv", csv_text)}
    )
    assert dry.json() == {
        "applied": False,
        "dry_run": True,
        "rows": 2,
        "new_units": 0,
        "new_cadres": 2,
        "updated_cadres": 0,
        "passwords_set": 1,
    }
    done = await directory.post(
        "/v1/imports/people", headers=headers, files={"file": ("people.csv", csv_text)}
    )
    assert done.json()["new_cadres"] == 2
    again = await directory.post(
        "/v1/imports/people", headers=headers, files={"file": ("people.xlsx", _xlsx(good))}
    )
    assert again.json() == {
        "applied": True,
        "dry_run": False,
        "rows": 2,
        "new_units": 0,
        "new_cadres": 0,
        "updated_cadres": 0,
        "passwords_set": 0,
    }
    assert await login(directory, f"new1.{marker}", "secret1")

    header, first_person = good[0], good[1]
    moved = [header, [*first_person[:3], "leye-v1", *first_person[4:]]]  # leye -> leye-v1
    transfer = await directory.post(
        "/v1/imports/people", headers=headers, files={"file": ("m.xlsx", _xlsx(moved))}
    )
    assert transfer.json()["updated_cadres"] == 1

    events = await _directory_events(kafka_bootstrap, marker, 3)
    decoded = [decode(r.headers, r.value) for r in events]
    by_subject: dict[str, list[str]] = {}
    for event in decoded:  # order holds per cadre (the Kafka key), not across cadres
        by_subject.setdefault(event.subject, []).append(event.type)
    assert by_subject == {
        f"n1-{marker}": ["directory.cadre_registered", "directory.cadre_transferred"],
        f"n2-{marker}": ["directory.cadre_registered"],
    }
    transferred = next(e for e in decoded if e.type == "directory.cadre_transferred")
    assert transferred.tenant == "demo"
    assert transferred.unit_path == "/demo/wangmo/leye/leye-v1"
    assert transferred.actor == "orgadmin"
    assert transferred.data.model_dump()["from_unit_path"] == "/demo/wangmo/leye"


async def test_loading_the_demo_again_changes_nothing(directory: httpx.AsyncClient) -> None:
    assert await load_demo(directory.app.state.runtime) == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("username", "allowed"),
    [
        ("orgadmin", True),
        ("super.admin", True),
        ("senior.admin", True),
        ("junior.admin", False),
        ("city.leader", False),
        ("county.leader", False),
        ("township.leader", False),
        ("cadre1", False),
    ],
)
async def test_only_admins_change_the_directory(
    directory: httpx.AsyncClient, username: str, allowed: bool
) -> None:
    headers = await login(directory, username)
    suffix = uuid.uuid4().hex[:6]
    attempts = [
        directory.post(
            "/v1/units",
            headers=headers,
            json={
                "unit_id": f"v-{suffix}",
                "parent_id": "leye",
                "name": "新村",
                "level": "village",
            },
        ),
        directory.put(
            "/v1/units/leye/geofences/gate",
            headers=headers,
            json={"lat": 25.2, "lon": 106.1, "radius_m": 100},
        ),
        directory.put(
            "/v1/calendar/2026-12-28", headers=headers, json={"workday": False, "note": "调休"}
        ),
        directory.post(
            "/v1/cadres",
            headers=headers,
            json={
                "cadre_id": f"c-{suffix}",
                "username": f"u.{suffix}",
                "name": "新",
                "unit_id": "leye",
            },
        ),
    ]
    for attempt in attempts:
        response = await attempt
        assert (response.status_code < 300) is allowed, response.text
        if not allowed:
            assert response.status_code == 403
            assert response.json()["code"] == "forbidden"


async def test_bad_input_gets_a_4xx_problem(directory: httpx.AsyncClient) -> None:
    headers = await login(directory, "orgadmin")
    village_under_city = await directory.post(
        "/v1/units",
        headers=headers,
        json={"unit_id": "vx", "parent_id": "demo", "name": "村", "level": "village"},
    )
    assert village_under_city.status_code == 422
    assert village_under_city.json()["errors"][0]["field"] == "level"
    # A name is read in workbooks and notifications: no tabs, line breaks or other controls.
    control_name = await directory.post(
        "/v1/units",
        headers=headers,
        json={"unit_id": "vy", "parent_id": "demo", "name": "村\x01", "level": "county"},
    )
    assert control_name.status_code == 422
    assert control_name.json()["code"] == "validation-failed"
    fence = await directory.put(
        "/v1/units/leye/geofences/f", headers=headers, json={"lat": 95, "lon": 0, "radius_m": 1}
    )
    assert fence.status_code == 422
    assert fence.json()["code"] == "validation-failed"
    not_a_table = await directory.post(
        "/v1/imports/units", headers=headers, files={"file": ("x.csv", b"\xff\xfe\x00")}
    )
    assert not_a_table.status_code == 422
    assert not_a_table.json()["code"] == "unreadable-file"
    unknown_unit = await directory.get("/v1/units/nowhere", headers=headers)
    assert unknown_unit.status_code == 404
    # PostgreSQL cannot store NUL: refused up front, never a 500 from deep inside a write.
    nul_body = await directory.put(
        "/v1/calendar/2026-12-01", headers=headers, json={"workday": True, "note": "a\x00b"}
    )
    assert nul_body.status_code == 422
    assert nul_body.json()["code"] == "nul-character"
    nul_path = await directory.get("/v1/units/le%00ye", headers=headers)
    assert nul_path.status_code == 422
    nul_csv = await directory.post(
        "/v1/imports/units",
        headers=headers,
        files={"file": ("u.csv", b"unit_id,parent_id,name,level\nx\x00,,n,city\n")},
    )
    assert nul_csv.status_code == 422


# Every role against the directory's read endpoints (writes: test_only_admins_change_...).
READ_MATRIX = [
    (
        "/v1/me",
        {
            "orgadmin": 200,
            "junior.admin": 200,
            "super.admin": 200,
            "county.leader": 200,
            "township.leader": 200,
            "cadre1": 200,
        },
    ),
    (
        "/v1/units",
        {
            "orgadmin": 200,
            "junior.admin": 200,
            "super.admin": 200,
            "county.leader": 200,
            "township.leader": 200,
            "cadre1": 200,
        },
    ),
    (
        "/v1/units/wangmo",
        {
            "orgadmin": 200,
            "junior.admin": 200,
            "super.admin": 200,
            "county.leader": 200,
            "township.leader": 404,
            "cadre1": 404,
        },
    ),
    (
        "/v1/units/leye/geofences",
        {
            "orgadmin": 200,
            "junior.admin": 200,
            "super.admin": 200,
            "county.leader": 200,
            "township.leader": 200,
            "cadre1": 404,
        },
    ),
    (
        "/v1/cadres/cadre2",
        {
            "orgadmin": 200,
            "junior.admin": 200,
            "super.admin": 200,
            "county.leader": 200,
            "township.leader": 200,
            "cadre1": 404,
        },
    ),
    (
        "/v1/cadres/cadre3",
        {
            "orgadmin": 200,
            "junior.admin": 200,
            "super.admin": 200,
            "county.leader": 200,
            "township.leader": 404,
            "cadre1": 404,
        },
    ),
    (
        "/v1/calendar?year=2026",
        {
            "orgadmin": 200,
            "junior.admin": 200,
            "super.admin": 200,
            "county.leader": 200,
            "township.leader": 200,
            "cadre1": 200,
        },
    ),
]


@pytest.mark.parametrize(("path", "expected"), READ_MATRIX, ids=[p for p, _ in READ_MATRIX])
async def test_read_authorisation_matrix(
    directory: httpx.AsyncClient, path: str, expected: dict[str, int]
) -> None:
    for username, status in expected.items():
        response = await directory.get(path, headers=await login(directory, username))
        assert response.status_code == status, f"{username}: {response.text}"
    assert (await directory.get(path)).status_code == 401
