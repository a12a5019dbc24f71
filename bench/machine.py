"""A one-line description of the machine, written beside every benchmark result."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe() -> str:
    cores = os.cpu_count() or 0
    memory_gib = 0.0
    model = platform.processor() or platform.machine()
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = int(line.split()[1]) / 1024 / 1024
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{cores} cores, {memory_gib:.0f} GiB RAM, {model}, Python {platform.python_version()}"
