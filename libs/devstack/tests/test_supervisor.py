"""The supervisor behind `make up` restarts a crashed service and stops everything at the end."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from cadre.devstack.ports import free_port
from cadre.devstack.supervisor import SupervisedService, Supervisor


def test_a_killed_service_is_restarted_and_all_are_stopped_at_the_end(tmp_path: Path) -> None:
    port = free_port()
    service = SupervisedService(
        name="web",
        command=[sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        port=port,
        log_file=tmp_path / "web.log",
    )
    lines: list[str] = []
    pids: list[int] = []
    deadline = time.monotonic() + 30

    def until() -> bool:
        assert time.monotonic() < deadline, "\n".join(lines)
        process = service.process
        if process is None or process.poll() is not None:
            return False
        if not pids:
            pids.append(process.pid)
            os.kill(process.pid, signal.SIGKILL)  # a crash
            return False
        if process.pid != pids[0]:
            pids.append(process.pid)
            return True  # running again under a new pid
        return False

    Supervisor([service], lines.append).run(until=until)

    assert service.restarts == 1
    assert any("exited with code -9; restart #1" in line for line in lines)
    assert len(pids) == 2
    assert service.process is not None
    assert service.process.poll() is not None, "the supervisor stops what it started"
    assert "web: stopped" in lines
