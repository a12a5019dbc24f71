"""PostgreSQL 15+ as a local process from the machine's packages, data under the stack dir."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cadre.devstack.processes import LocalServer, StackError, as_unprivileged

PG_USER = "cadre"
SYSTEM_USER = "postgres"  # used when we are root: PostgreSQL will not run as root


def find_pg_bin() -> Path:
    explicit = os.environ.get("CADRE_PG_BIN")
    candidates = [explicit] if explicit else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    which = shutil.which("pg_ctl")
    if which:
        candidates.append(str(Path(which).resolve().parent))
    for candidate in candidates:
        if (
            candidate
            and (Path(candidate) / "postgres").exists()
            and (Path(candidate) / "initdb").exists()
        ):
            return Path(candidate)
    raise StackError(
        "PostgreSQL server binaries not found: install them (Debian: "
        "apt-get install postgresql) or set CADRE_PG_BIN to the directory holding initdb"
    )


def _version_key(path: str) -> int:
    try:
        return int(Path(path).parent.name)
    except ValueError:
        return 0


@dataclass
class PostgresServer(LocalServer):
    # Fast shutdown: connected services must not hold a restart up for 30 s and then get
    # the postmaster SIGKILLed, which leaves its backends holding the shared memory.
    stop_signal = signal.SIGINT

    @property
    def data_dir(self) -> Path:
        # Resolved: as root the home may be a link to a place the postgres user can reach.
        return self.home.resolve() / "data"

    @property
    def socket_directory(self) -> Path:
        """Where the server puts its Unix-domain socket (`unix_socket_directories`)."""
        return self.home.resolve()

    @property
    def socket_path(self) -> Path:
        return self.socket_directory / f".s.PGSQL.{self.port}"

    def _own(self) -> None:
        """As root, hand the data to the `postgres` user, moving it somewhere that user can
        reach when the stack dir sits below a private directory (for example /root)."""
        if os.geteuid() != 0:
            return
        reachable = (
            subprocess.run(
                ["runuser", "-u", SYSTEM_USER, "--", "test", "-x", str(self.home)], check=False
            ).returncode
            == 0
        )
        if not reachable and not self.home.is_symlink():
            import hashlib

            digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
            elsewhere = Path("/var/tmp") / f"cadre-postgres-{digest}"  # noqa: S108 (private name)
            elsewhere.mkdir(parents=True, exist_ok=True)
            self.home.rmdir()
            self.home.symlink_to(elsewhere, target_is_directory=True)
        target = self.home.resolve()
        shutil.chown(target, SYSTEM_USER, SYSTEM_USER)
        for path in target.rglob("*"):
            shutil.chown(path, SYSTEM_USER, SYSTEM_USER)

    def start(self, timeout_s: float = 60.0) -> None:
        bin_dir = find_pg_bin()
        if not self.home.is_symlink():
            self.home.mkdir(parents=True, exist_ok=True)
        self._own()
        if not (self.data_dir / "PG_VERSION").exists():
            result = subprocess.run(
                as_unprivileged(
                    [
                        str(bin_dir / "initdb"),
                        "-D",
                        str(self.data_dir),
                        "-U",
                        PG_USER,
                        "--auth=trust",
                        "--encoding=UTF8",
                        "--locale=C.UTF-8",
                    ],
                    SYSTEM_USER,
                ),
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise StackError(
                    f"initdb failed:\n{result.stdout}\n{result.stderr}\n"
                    f"(when running as root, {self.home} must be reachable by the "
                    f"'{SYSTEM_USER}' user)"
                )
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.socket_directory),
            "max_connections": "300",
            "shared_buffers": "256MB",
            "log_min_messages": "warning",
        }
        command = [str(bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        self._launch(as_unprivileged(command, SYSTEM_USER), timeout_s)
