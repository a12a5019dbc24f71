"""Every service starts as a real process, migrates its own database, answers /healthz,
/readyz, /metrics and /openapi.json, and schemathesis finds no 5xx in its API."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from alembic.script import ScriptDirectory

from cadre.devstack.infra import SERVICES, Infra, create_databases, drop_database
from cadre.devstack.ports import free_port
from cadre.devstack.processes import spawn, stop_process, wait_for_port
from cadre.events.db import alembic_config

pytestmark = [pytest.mark.integration]


@dataclass
class RunningService:
    name: str
    url: str
    database: str
    log_file: Path


@pytest.fixture(scope="module")
def services(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, RunningService]]:
    logs = tmp_path_factory.mktemp("service-logs")
    admin = infra.pg_url("postgres", "postgresql")
    running: dict[str, RunningService] = {}
    processes: list[subprocess.Popen[bytes]] = []
    suffix = uuid.uuid4().hex[:8]
    ports = {name: free_port() for name in SERVICES}
    directory_url = f"http://127.0.0.1:{ports['directory']}"
    try:
        for name in SERVICES:
            database = f"cadre_{name}_{suffix}"
            asyncio.run(create_databases(admin, [database]))
            port = ports[name]
            env = {
                f"CADRE_{name.upper()}_HTTP_PORT": str(port),
                f"CADRE_{name.upper()}_DATABASE_URL": infra.pg_url(database),
                "CADRE_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
                "CADRE_REDIS_URL": infra.redis_url,
                "CADRE_DIRECTORY_LOAD_DEMO": "true",  # logins for authenticated fuzzing
                # Its own consumer group: never move the offsets of a running `make up`.
                "CADRE_ATTENDANCE_REPLICA_GROUP": f"replica-{suffix}",
                "CADRE_SCORING_GROUP_PREFIX": f"scoring-{suffix}",
                "CADRE_JOURNAL_CONSUMER_GROUP": f"journal-{suffix}",
                "CADRE_NOTIFY_CONSUMER_GROUP": f"notify-{suffix}",
                "CADRE_JOURNAL_BLOB_DIR": str(logs / "journal-blobs"),
                # Verify tokens against this run's directory, so fuzzing gets past auth.
                f"CADRE_{name.upper()}_DIRECTORY_URL": directory_url,
            }
            log_file = logs / f"{name}.log"
            processes.append(spawn([sys.executable, "-m", f"cadre.{name}"], log_file, env=env))
            running[name] = RunningService(name, f"http://127.0.0.1:{port}", database, log_file)
        for service, process in zip(running.values(), processes, strict=True):
            wait_for_port(
                int(service.url.rsplit(":", 1)[1]), 60, process, service.log_file, service.name
            )
        yield running
    finally:
        for process in processes:
            stop_process(process)
        for service in running.values():
            asyncio.run(drop_database(admin, service.database))


@pytest.mark.parametrize("name", SERVICES)
def test_service_is_alive_ready_and_documented(
    services: dict[str, RunningService], name: str
) -> None:
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
def test_service_migrated_its_own_database(
    services: dict[str, RunningService], infra: Infra, name: str
) -> None:
    async def tables() -> tuple[set[str], set[str]]:
        connection = await asyncpg.connect(infra.pg_url(services[name].database, "postgresql"))
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
        f"cadre.{name}.adapters.migrations", infra.pg_url(services[name].database)
    )
    assert versions == set(ScriptDirectory.from_config(config).get_heads())
    assert {"event_store", "outbox", "processed_events", "idempotency_keys"} <= names


@pytest.fixture(scope="module")
def admin_token(services: dict[str, RunningService]) -> str:
    """Taken before any fuzzing: fuzzing as an admin may well change the admin's password."""
    response = httpx.post(
        f"{services['directory'].url}/v1/auth/token",
        json={"username": "orgadmin", "password": "demo"},
        timeout=30,
    )
    token: str = response.json()["access_token"]
    return token


@pytest.mark.parametrize("name", SERVICES)
def test_schemathesis_finds_no_server_error(
    services: dict[str, RunningService], name: str, tmp_path: Path, admin_token: str
) -> None:
    service = services[name]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{service.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {admin_token}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "30",
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
