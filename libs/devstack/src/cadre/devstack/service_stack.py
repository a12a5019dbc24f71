"""The platform's services as real processes for a test: each on a free port with a database
of its own, its own consumer groups (never moving the offsets of a running `make up`) and
tokens verified against this stack's directory. The dashboard, if asked for, reads this
stack's services."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cadre.devstack.infra import SERVICES, Infra, create_databases, drop_database
from cadre.devstack.ports import free_port
from cadre.devstack.processes import kill_process, spawn, stop_process, wait_for_port


@dataclass
class RunningService:
    name: str
    url: str
    database: str | None
    log_file: Path
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None:
            kill_process(self.process)
            self.process = None

    def start(self, timeout_s: float = 60) -> None:
        self.process = spawn(self.command, self.log_file, env=self.env)
        wait_for_port(self.port, timeout_s, self.process, self.log_file, self.name)


@dataclass
class ServiceStack:
    services: dict[str, RunningService] = field(default_factory=dict)

    def __getitem__(self, name: str) -> RunningService:
        return self.services[name]

    def url(self, name: str) -> str:
        return self.services[name].url


@contextmanager
def service_stack(
    infra: Infra,
    logs: Path,
    names: Sequence[str] = SERVICES,
    extra_env: Mapping[str, str] | None = None,
    *,
    database_over_socket: bool = False,
) -> Iterator[ServiceStack]:
    """`database_over_socket`: the services reach PostgreSQL over its Unix-domain socket
    (`Infra.pg_local_url`), as services on the database's own machine would."""
    admin = infra.pg_url("postgres", "postgresql")
    suffix = uuid.uuid4().hex[:8]
    ports = {name: free_port() for name in names}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    stack = ServiceStack()
    common = {
        "CADRE_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "CADRE_REDIS_URL": infra.redis_url,
        "CADRE_ATTENDANCE_REPLICA_GROUP": f"replica-{suffix}",
        "CADRE_SCORING_GROUP_PREFIX": f"scoring-{suffix}",
        "CADRE_JOURNAL_CONSUMER_GROUP": f"journal-{suffix}",
        "CADRE_NOTIFY_CONSUMER_GROUP": f"notify-{suffix}",
        "CADRE_JOURNAL_BLOB_DIR": str(logs / "journal-blobs"),
        **{f"CADRE_DASHBOARD_{name.upper()}_URL": url for name, url in urls.items()},
        **(extra_env or {}),
    }
    try:
        for name in names:
            database = f"cadre_{name}_{suffix}" if name in SERVICES else None
            env = {**common, f"CADRE_{name.upper()}_HTTP_PORT": str(ports[name])}
            if "directory" in urls:  # otherwise the caller says where the keys are
                env[f"CADRE_{name.upper()}_DIRECTORY_URL"] = urls["directory"]
            if database is not None:
                asyncio.run(create_databases(admin, [database]))
                env[f"CADRE_{name.upper()}_DATABASE_URL"] = (
                    infra.pg_local_url(database) if database_over_socket else infra.pg_url(database)
                )
            service = RunningService(
                name,
                urls[name],
                database,
                logs / f"{name}.log",
                [sys.executable, "-m", f"cadre.{name}"],
                env,
            )
            service.process = spawn(service.command, service.log_file, env=env)
            stack.services[name] = service
        for service in stack.services.values():
            assert service.process is not None
            wait_for_port(service.port, 60, service.process, service.log_file, service.name)
        yield stack
    finally:
        for service in stack.services.values():
            if service.process is not None:
                stop_process(service.process)
        for service in stack.services.values():
            if service.database is not None:
                asyncio.run(drop_database(admin, service.database))
