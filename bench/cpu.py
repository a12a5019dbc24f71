"""CPU seconds per kind of process over a stretch of a benchmark, read from /proc (Linux).

Every process on the box is sampled a few times a second and the last reading of each is
kept, so processes that start and exit within the stretch (a replay's workers, database
backends) are counted too. Used as `with CpuAccount() as account: ...`, then
`account.seconds` maps a kind ("postgres", "kafka", "replay-worker", ...) to CPU seconds.
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from types import TracebackType

_TICKS = os.sysconf("SC_CLK_TCK")


_SERVICE = re.compile(r"-m cadre\.(\w+)\s*$")


def process_kind(name: str, command: str, parent_command: str = "") -> str:
    if name == "postgres":
        return "postgres"
    if "kafka" in command:
        return "kafka"
    if "redis" in name or "valkey" in name:
        return "redis"
    if "spawn_main" in command:  # multiprocessing's spawned children: their parent's work
        parent = process_kind("", parent_command) if parent_command else "other"
        return "replay-worker" if parent == "replay-coordinator" else parent
    if "cadre.scoring.entrypoints.cli" in command:
        return "replay-coordinator"
    if service := _SERVICE.search(command):  # a service process, or its HTTP workers' parent
        return service.group(1)
    if "bench." in command:
        return "benchmark"
    return "other"


def _readings() -> dict[int, tuple[str | None, float]]:
    """pid -> (kind, CPU seconds so far) of every process readable now; the kind is None
    for a process without a command line (one exiting)."""
    processes: dict[int, tuple[str, str, int, float]] = {}  # pid -> name, command, ppid, CPU
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it exited meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime
        processes[int(entry.name)] = (name, command.strip(), int(fields[1]), cpu)
    found: dict[int, tuple[str | None, float]] = {}
    for pid, (name, command, parent, cpu) in processes.items():
        parent_command = processes[parent][1] if parent in processes else ""
        kind = process_kind(name, command, parent_command) if command else None
        found[pid] = (kind, cpu)
    return found


class CpuAccount:
    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s = interval_s
        self.seconds: dict[str, float] = {}
        self.wall_s = 0.0
        self._start: dict[int, float] = {}
        self._last: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._update()

    def _update(self) -> None:
        for pid, (kind, cpu) in _readings().items():
            # The latest command line decides the kind: a spawned worker read between its
            # fork and its exec still shows its parent's. An exiting process has none any
            # more, but its CPU time is still there to read, so it keeps the kind it had.
            known = self._last.get(pid)
            self._last[pid] = (kind or (known[0] if known else "other"), cpu)

    def __enter__(self) -> CpuAccount:
        self._last = {}
        self._update()
        self._start = {pid: cpu for pid, (_, cpu) in self._last.items()}
        self._began = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._update()
        self.wall_s = time.perf_counter() - self._began
        totals: dict[str, float] = {}
        for pid, (process, cpu) in self._last.items():
            used = cpu - self._start.get(pid, 0.0)  # a process that started since counts from 0
            totals[process] = totals.get(process, 0.0) + used
        ranked = sorted(totals.items(), key=lambda item: -item[1])
        self.seconds = {kind: round(s, 1) for kind, s in ranked if s >= 0.05}
