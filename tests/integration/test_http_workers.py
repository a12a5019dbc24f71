"""A service can run several HTTP worker processes on its port (CADRE_<SERVICE>_HTTP_WORKERS):
each builds the app from the service's factory, logs JSON like a single process, and a
SIGKILL of the service takes all of them down."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from cadre.devstack.infra import Infra
from cadre.devstack.service_stack import service_stack
from cadre.devstack.testing import wait_until

pytestmark = [pytest.mark.integration]


def _started(log_file: Path) -> list[dict[str, object]]:
    lines = []
    for line in log_file.read_text().splitlines():
        if line.startswith("{") and '"service started"' in line:
            lines.append(json.loads(line))
    return lines


def _alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for a parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_two_http_workers_each_build_the_app_log_json_and_die_with_the_service(
    infra: Infra, tmp_path: Path
) -> None:
    env = {"CADRE_ATTENDANCE_HTTP_WORKERS": "2"}
    with service_stack(infra, tmp_path, ("attendance",), env) as stack:
        attendance = stack["attendance"]
        wait_until(lambda: len(_started(attendance.log_file)) == 2, 60, "two workers started")
        assert {line["service"] for line in _started(attendance.log_file)} == {"attendance"}
        with httpx.Client(base_url=attendance.url, timeout=10) as http:
            answers = [http.get("/healthz") for _ in range(20)]
        assert all(a.json() == {"status": "ok", "service": "attendance"} for a in answers)

        assert attendance.process is not None
        supervisor = attendance.process.pid
        workers = [
            int(pid)
            for pid in Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
        ]
        assert len(workers) >= 2
        attendance.kill()
        wait_until(lambda: not any(_alive(pid) for pid in workers), 10, "the workers to die")
