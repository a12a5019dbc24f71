"""Runs the services as supervised child processes: status lines, restart with backoff on a
crash, and a clean stop of everything on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cadre.devstack import ports
from cadre.devstack.infra import SERVICES
from cadre.devstack.paths import stack_dir
from cadre.devstack.processes import spawn, stop_process

Reporter = Callable[[str], None]
MAX_BACKOFF_S = 30.0


@dataclass
class SupervisedService:
    name: str
    command: list[str]
    port: int
    log_file: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    ready: bool = False
    next_start_at: float = 0.0
    started_at: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=1) as response:  # noqa: S310 (local)
            return bool(response.status == 200)
    except OSError:
        return False


class Supervisor:
    def __init__(
        self,
        services: list[SupervisedService],
        report: Reporter,
        on_all_ready: Callable[[], None] | None = None,
    ) -> None:
        self.services = services
        self.report = report
        self._stopping = False
        # Runs once, in a thread of its own, when every service first answers /healthz.
        self._on_all_ready = on_all_ready

    def request_stop(self, *_: object) -> None:
        self._stopping = True

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Supervise until Ctrl-C (or `until()` is true), then stop every service."""
        previous = signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        try:
            for service in self.services:
                self._start(service)
            while not self._stopping and not (until and until()):
                self._tick()
                time.sleep(0.5)
        finally:
            self.report("stopping services")
            for service in reversed(self.services):
                if service.process is not None:
                    stop_process(service.process)
                    self.report(f"{service.name}: stopped")
            signal.signal(signal.SIGINT, previous)

    def _start(self, service: SupervisedService) -> None:
        service.process = spawn(service.command, service.log_file, env=service.env)
        service.started_at = time.monotonic()
        service.ready = False
        self.report(f"{service.name}: starting (pid {service.process.pid}, log {service.log_file})")

    def _tick(self) -> None:
        now = time.monotonic()
        for service in self.services:
            process = service.process
            if process is None:
                if now >= service.next_start_at:
                    self._start(service)
                continue
            code = process.poll()
            if code is not None:
                service.restarts += 1
                delay = min(2.0 ** min(service.restarts - 1, 5), MAX_BACKOFF_S)
                # A service that ran a while before crashing starts again quickly.
                if now - service.started_at > 60:
                    delay = 1.0
                self.report(
                    f"{service.name}: exited with code {code}; restart #{service.restarts} "
                    f"in {delay:.0f}s (see {service.log_file})"
                )
                service.process = None
                service.next_start_at = now + delay
                continue
            if not service.ready and _healthy(service.url):
                service.ready = True
                took = now - service.started_at
                self.report(f"{service.name}: ready at {service.url} ({took:.1f}s)")
        if self._on_all_ready is not None and all(s.ready for s in self.services):
            callback, self._on_all_ready = self._on_all_ready, None
            threading.Thread(target=callback, name="on-all-ready", daemon=True).start()


def service_command(name: str) -> list[str]:
    return [sys.executable, "-m", f"cadre.{name}"]


def service_env(name: str, port: int) -> dict[str, str]:
    env = {f"CADRE_{name.upper()}_HTTP_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    if name == "directory":
        env["CADRE_DIRECTORY_LOAD_DEMO"] = "true"  # `make up` runs with the demo tenant
    if name == "dashboard":  # it reads the others' APIs wherever they were moved to
        for upstream in SERVICES:
            env[f"CADRE_DASHBOARD_{upstream.upper()}_URL"] = (
                f"http://127.0.0.1:{ports.service_port(upstream)}"
            )
    if name == "journal":  # attachments live with the rest of the stack's data
        env["CADRE_JOURNAL_BLOB_DIR"] = str(stack_dir() / "journal-blobs")
    return {**env, **{k: v for k, v in os.environ.items() if k.startswith("CADRE_")}}
