"""Replay benchmark: `scoring replay` into a fresh generation over a synthetic county, beside
the raw aiokafka read rate of the same topics measured in the same run, for a curve of
county sizes (time and the replay process's peak RSS per size).

    uv run python -m bench.replay [--sizes 1000,2000] [--days 30] [--headline 2000] [--cpu]

The headline size is the one the targets are judged on (10,000 cadres × 90 days in the full
profile). Every size starts from empty topics. Writes bench/results/replay.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from bench.stack import BENCH_STACK, RESULTS, bench_infra, raw_read_rate, say, write_result  # isort: skip

from aiokafka.admin import AIOKafkaAdminClient

from bench.county import County, publish
from bench.cpu import CpuAccount
from bench.machine import describe
from cadre.devstack.infra import Infra, create_databases, create_topics, drop_database
from cadre.events.topics import ALL_EVENT_TOPICS


async def reset_topics(bootstrap: str) -> None:
    """Empty event topics, so each size replays only its own county."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [t for t in existing if t in ALL_EVENT_TOPICS or t.endswith(".dlq")]
        if doomed:
            await admin.delete_topics(doomed)
            for _ in range(100):
                if not set(await admin.list_topics()) & set(doomed):
                    break
                await asyncio.sleep(0.2)
    finally:
        await admin.close()
    await create_topics(bootstrap, list(ALL_EVENT_TOPICS))


def run_replay(
    infra: Infra, database: str, workers: int, profile: Path | None = None
) -> dict[str, Any]:
    """`scoring replay --json --workers N` as its own process, as operations would run it.
    Its peak RSS is the sum of every replay process's own peak (the coordinator and its
    workers), and never less than the kernel's figure for the process tree. With `profile`,
    py-spy samples all of them and writes collapsed stacks there (RSS is then not reported)."""
    env = {
        **os.environ,
        "CADRE_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "CADRE_REDIS_URL": infra.redis_url,
        "CADRE_SCORING_DATABASE_URL": infra.pg_url(database),
        "CADRE_SCORING_GROUP_PREFIX": f"bench-{uuid.uuid4().hex[:6]}",
    }
    log = BENCH_STACK / f"replay-{database}.log"
    command = [sys.executable, "-m", "cadre.scoring.entrypoints.cli", "replay", "--json"]
    command += ["--workers", str(workers)]
    if profile is not None:
        command = [
            *("py-spy", "record", "--subprocesses", "--format", "raw", "-o", str(profile)),
            *("--", *command),
        ]
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=stderr)
        assert process.stdout is not None
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"scoring replay failed ({process.returncode}); see {log}")
    last = [line for line in output.decode().splitlines() if line.startswith("{")][-1]
    result: dict[str, Any] = json.loads(last)
    kernel_mb = round(usage.ru_maxrss / 1024, 1)  # ru_maxrss is in KiB
    result["peak_rss_mb"] = None if profile else max(result["peak_rss_mb"], kernel_mb)
    return result


async def measure_size(
    infra: Infra, cadres: int, days: int, workers: int, profile: bool, count_cpu: bool = False
) -> dict[str, Any]:
    bootstrap = infra.kafka_bootstrap
    await reset_topics(bootstrap)
    county = County(cadres, days)
    say(f"{cadres:,} cadres × {days} days: publishing")
    started = time.perf_counter()
    published = await publish(bootstrap, county.events())
    publish_s = time.perf_counter() - started
    say(f"  {published:,} events in {publish_s:.0f} s; raw aiokafka read")
    raw = await raw_read_rate(bootstrap, ALL_EVENT_TOPICS, published)
    say(f"  raw read {raw:,.0f} events/s; scoring replay")
    database = f"bench_replay_{cadres}"
    admin = infra.pg_url("postgres", "postgresql")
    await create_databases(admin, [database])
    try:
        where = RESULTS / f"replay-profile-{cadres}.txt" if profile else None
        with CpuAccount() if count_cpu else nullcontext() as account:
            replay = await asyncio.to_thread(run_replay, infra, database, workers, where)
    finally:
        await drop_database(admin, database)
    rate = replay["events"] / replay["seconds"]
    say(
        f"  replay {replay['events']:,} events in {replay['seconds']:.1f} s ({rate:,.0f}/s,"
        f" {rate / raw:.0%} of raw), peak RSS {replay['peak_rss_mb']} MB;"
        f" fold {replay['fold_s']} s, derive {replay['derive_s']} s,"
        f" digest, index and switch {replay['digest_s']} s (indexing {replay['index_s']} s)"
    )
    cpu: dict[str, Any] = {}
    if account is not None:
        total = sum(account.seconds.values())
        cpu = {
            "cpu_seconds": account.seconds,
            "cpu_us_per_event": round(total / replay["events"] * 1e6, 1),
        }
        parts = ", ".join(f"{kind} {s} s" for kind, s in account.seconds.items())
        per_event = cpu["cpu_us_per_event"]
        say(f"  CPU {total:.1f} s in {account.wall_s:.1f} s ({per_event} µs an event): {parts}")
    return {
        **cpu,
        "cadres": cadres,
        "days": days,
        "events": published,
        "replayed_events": replay["events"],
        "replay_workers": replay["workers"],
        "replay_seconds": round(replay["seconds"], 2),
        "replay_events_per_s": round(rate),
        "raw_read_events_per_s": round(raw),
        "replay_vs_raw_read": round(rate / raw, 3),
        "peak_rss_mb": replay["peak_rss_mb"],
        "phase_seconds": {
            "fold": replay["fold_s"],
            "derive": replay["derive_s"],
            "digest_index_and_switch": replay["digest_s"],
            "of_which_index": replay["index_s"],
        },
        "digest": replay["digest"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,2000", help="cadres per county, comma-separated")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--headline", type=int, help="the size judged on; default the largest")
    parser.add_argument("--profile", action="store_true", help="sample the replay with py-spy")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="count CPU seconds per kind of process during the replay, from /proc",
    )
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="replay processes (one per core)"
    )
    parser.add_argument("--out", default="replay", help="results file name, without .json")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    headline = args.headline or max(sizes)
    with bench_infra() as infra:
        curve = [
            asyncio.run(measure_size(infra, n, args.days, args.workers, args.profile, args.cpu))
            for n in sizes
        ]
    first = curve[0]
    for point in curve:  # cost per cadre relative to the smallest size: ≤ 1 is linear or better
        point["time_per_event_vs_smallest"] = round(
            (point["replay_seconds"] / point["replayed_events"])
            / (first["replay_seconds"] / first["replayed_events"]),
            3,
        )
    main_point = next(p for p in curve if p["cadres"] == headline)
    result = {
        "benchmark": "replay",
        "machine": describe(),
        "headline": {k: v for k, v in main_point.items() if k != "digest"},
        "scale_curve": curve,
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
