"""What every benchmark shares: its own Kafka, PostgreSQL and Redis on ports of their own
(29092, 25432, 26379, data under .stack-bench/), so a running `make up` is neither disturbed
nor measured; timestamped progress lines; and where results are written.

Import this module before anything from `cadre.devstack`: the ports are read at import."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("CADRE_KAFKA_PORT", "29092")
os.environ.setdefault("CADRE_PG_PORT", "25432")
os.environ.setdefault("CADRE_REDIS_PORT", "26379")
BENCH_STACK = Path(os.environ.setdefault("CADRE_STACK_DIR", str(Path(".stack-bench").resolve())))

from aiokafka import AIOKafkaConsumer  # noqa: E402

from cadre.devstack.infra import Infra  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


@contextmanager
def bench_infra() -> Iterator[Infra]:
    """Fresh servers for one benchmark run, removed afterwards (the logs are kept)."""
    infra = Infra()
    shutil.rmtree(BENCH_STACK, ignore_errors=True)
    try:
        infra.start(report=say)
        yield infra
    finally:
        infra.stop(report=say)
        # The servers' data goes; the services' logs stay for a look at what went wrong.
        for child in BENCH_STACK.iterdir() if BENCH_STACK.exists() else ():
            if child.name != "logs":
                shutil.rmtree(child, ignore_errors=True)


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    say(f"wrote {out}")
    return out


async def raw_read_rate(
    bootstrap: str, topics: Sequence[str], expected: int, **options: Any
) -> float:
    """Records per second for a bare aiokafka consumer reading `topics` from the start
    until `expected` records arrived: the ceiling any Python consumer of them works under.
    `options` go to the consumer (fetch sizes, `max_records` to each poll)."""
    max_records = options.pop("max_records", 500)
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **options,
    )
    await consumer.start()
    try:
        seen = 0
        started = time.perf_counter()
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=1000, max_records=max_records)
            seen += sum(len(records) for records in batch.values())
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()
