"""Every service starts as a real process, migrates its own database, answers /healthz,
/readyz, /metrics and /openapi.json, and schemathesis finds no 5xx in its API."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from alembic.script import ScriptDirectory

from cadre.devstack.infra import PROCESSES, SERVICES, Infra
from cadre.devstack.service_stack import ServiceStack, service_stack
from cadre.events.db import alembic_config

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def services(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceStack]:
    logs = tmp_path_factory.mktemp("service-logs")
    # The demo logins are there for authenticated fuzzing.
    with service_stack(infra, logs, PROCESSES, {"CADRE_DIRECTORY_LOAD_DEMO": "true"}) as stack:
        yield stack


@pytest.mark.parametrize("name", SERVICES)
def test_service_is_alive_ready_and_documented(services: ServiceStack, name: str) -> None:
    service = services[name]
    with httpx.Client(base_url=service.url, timeout=10) as http:
        assert http.get("/healthz").json() == {"status": "ok", "service": name}
        ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"postgres": "ok", "redis": "ok", "kafka": "ok"}
        metrics = http.get("/metrics")
        assert metrics.status_code == 200
        assert f'cadre_outbox_backlog{{service="{name}"}}' in metrics.text
        spec = http.get("/openapi.json").json()
        assert spec["openapi"].startswith("3.")
        assert {"/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
        missing = http.get("/v1/no-such-thing", headers={"X-Correlation-ID": "trace-1"})
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.headers["x-correlation-id"] == "trace-1"


@pytest.mark.parametrize("name", SERVICES)
def test_service_migrated_its_own_database(services: ServiceStack, infra: Infra, name: str) -> None:
    async def tables() -> tuple[set[str], set[str]]:
        database = services[name].database
        assert database is not None
        connection = await asyncpg.connect(infra.pg_url(database, "postgresql"))
        try:
            versions = {
                r["version_num"]
                for r in await connection.fetch("SELECT version_num FROM alembic_version")
            }
            names = {
                r["tablename"]
                for r in await connection.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            }
            return versions, names
        finally:
            await connection.close()

    versions, names = asyncio.run(tables())
    config = alembic_config(
        f"cadre.{name}.adapters.migrations", infra.pg_url(str(services[name].database))
    )
    assert versions == set(ScriptDirectory.from_config(config).get_heads())
    assert {"event_store", "outbox", "processed_events", "idempotency_keys"} <= names


@pytest.fixture(scope="module")
def admin_token(services: ServiceStack) -> str:
    """Taken before any fuzzing: fuzzing as an admin may well change the admin's password."""
    response = httpx.post(
        f"{services['directory'].url}/v1/auth/token",
        json={"username": "orgadmin", "password": "demo"},
        timeout=30,
    )
    token: str = response.json()["access_token"]
    return token


@pytest.mark.parametrize("name", PROCESSES)
def test_schemathesis_finds_no_server_error(
    services: ServiceStack, name: str, tmp_path: Path, admin_token: str
) -> None:
    service = services[name]
    # The dashboard takes the same token from its session cookie.
    auth = (
        f"Cookie: cadre_session={admin_token}"
        if name == "dashboard"
        else (f"Authorization: Bearer {admin_token}")
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{service.url}/openapi.json",
            "--header",
            auth,
            "--checks",
            "not_a_server_error",
            "--max-examples",
            os.environ.get("CADRE_FUZZ_EXAMPLES", "30"),
            "--no-color",
            "--report-dir",
            str(tmp_path),
            # A live stream never ends by design; it has its own tests.
            "--exclude-path",
            "/v1/stream",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert generated is not None, result.stdout[-2000:]
    assert int(generated.group(1)) == int(generated.group(2)) > 0, result.stdout[-2000:]
