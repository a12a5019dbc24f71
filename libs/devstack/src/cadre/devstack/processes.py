"""Starting, probing and stopping local server processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


class StackError(RuntimeError):
    """A server could not be obtained or started; the message says what to do."""


def port_open(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout_s):
        return True
    return False


def wait_for_port(
    port: int,
    timeout_s: float,
    process: subprocess.Popen[bytes] | None = None,
    log_file: Path | None = None,
    what: str = "server",
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if process is not None and process.poll() is not None:
            raise StackError(
                f"{what} exited with code {process.returncode} before listening on {port}"
                + _tail(log_file)
            )
        time.sleep(0.2)
    raise StackError(
        f"{what} did not listen on port {port} within {timeout_s:.0f}s" + _tail(log_file)
    )


def _tail(log_file: Path | None, lines: int = 25) -> str:
    if log_file is None or not log_file.exists():
        return ""
    text = log_file.read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last lines of {log_file} ---\n" + "\n".join(text)


def spawn(
    command: Sequence[str],
    log_file: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a process in its own session, so Ctrl-C reaches the supervisor only."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        return subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )


def stop_process(
    process: subprocess.Popen[bytes], timeout_s: float = 15.0, first: int = signal.SIGTERM
) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, first)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def kill_process(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL, for fault-injection tests."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def as_unprivileged(command: Sequence[str], user: str) -> list[str]:
    """PostgreSQL refuses to run as root: run such a command as `user` when we are root."""
    if os.geteuid() != 0:
        return list(command)
    return ["runuser", "-u", user, "--", *command]


@dataclass
class LocalServer:
    """A server process with its data under `home`, listening on `port` on loopback."""

    home: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False, kw_only=True)

    @property
    def log_file(self) -> Path:
        return self.home.resolve() / f"{type(self).__name__.removesuffix('Server').lower()}.log"

    def _launch(self, command: Sequence[str], timeout_s: float) -> None:
        """Start `command` and wait until the port answers (or fail with the log's tail)."""
        self.process = spawn(command, self.log_file)
        what = type(self).__name__.removesuffix("Server")
        wait_for_port(self.port, timeout_s, self.process, self.log_file, what=what)

    # The polite stop signal; PostgreSQL overrides it (its SIGTERM waits for every client).
    stop_signal = signal.SIGTERM

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout_s=30, first=self.stop_signal)
            self.process = None
