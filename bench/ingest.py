"""Ingest benchmarks through the real attendance API (a real process, its outbox relay, Kafka):

1. check-in ingest: an open-loop load at `--rate` check-ins/s for `--seconds`, from the
   synthetic county's cadres; the accepted rate, latency percentiles, and lost events:
   check-ins answered 2xx whose `attendance.checked_in` event is not in Kafka, matched by
   check-in id (and, apart, those in Kafka whose request got no 2xx in time);
2. end to end: at `--e2e-rate` check-ins/s, every 20th is a branch-activity meeting of a
   cadre with no points yet, and the time from its POST to scoring's radar showing it.

    uv run python -m bench.ingest [--cadres 2000] [--rate 1500] [--seconds 60]

The directory's part of the county goes straight to Kafka; tokens are minted by a stand-in
key server (the services verify them against its JWKS). Writes bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import threading
import time
import uuid
from collections.abc import Iterable
from contextlib import nullcontext
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.stack import BENCH_STACK, bench_infra, say, write_result  # isort: skip

import asyncpg
import uvloop
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.county import County, Person, publish
from bench.cpu import CpuAccount
from bench.http_load import HttpError, HttpPool
from bench.machine import describe
from cadre.devstack.infra import Infra
from cadre.devstack.ports import free_port
from cadre.devstack.service_stack import service_stack
from cadre.devstack.testing import TokenMint, read_topic
from cadre.events.runtime import tune_garbage_collector
from cadre.events.vocabulary import Role
from cadre.events.wire import header_map

TENANT = "county"
BIND_RATE = 200  # check-ins/s while binding every phone before the measured run
PROBE_EVERY = 20  # every 20th end-to-end request is a probe: 15/s at 300/s
E2E_WINDOW_S = 30  # end-to-end p99 is also reported per window of this many seconds
MAX_IN_FLIGHT = 256  # a gateway's connection pool; beyond it a request waits for a connection
# A request not answered this long after it was issued (waiting for a connection included)
# is given up and counted as a transport error, so a server that stops answering cannot
# pile up the run's every request behind the pool.
REQUEST_DEADLINE_S = 10.0


def serve_jwks(mint: TokenMint) -> str:
    body = json.dumps(mint.jwks()).encode()

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Keys)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}"


def client(url: str) -> HttpPool:
    """The load's connections: `bench.http_load`, not httpx (whose pool spent O(connections)
    per request, capping the generator near 50/s) nor aiohttp (about 190 µs of CPU a
    check-in, taken from the cores the generator measures)."""
    return HttpPool(url, limit=MAX_IN_FLIGHT)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def body_for(person: Person, rnd: random.Random, branch: bool = False) -> dict[str, Any]:
    unit = person.unit
    return {
        "device_id": person.device_id,
        "mode": "meeting" if branch else "normal",
        "branch_activity": branch,
        "lat": round(unit.lat + rnd.uniform(-0.001, 0.001), 6),
        "lon": round(unit.lon + rnd.uniform(-0.001, 0.001), 6),
        "accuracy_m": 10.0,
        "occurred_at": datetime.now(UTC).isoformat(),
    }


def problem_code(answer: bytes) -> str:
    try:
        return str(json.loads(answer).get("code", "?"))
    except (ValueError, AttributeError):
        return "?"


class Load:
    """Open loop: requests start on schedule whether or not earlier ones have answered, so
    a slow server shows as latency, not as a politely lower rate."""

    def __init__(
        self, url: str, headers: dict[str, dict[str, str]], idempotency_keys: bool = False
    ) -> None:
        self.url = url
        self.headers = headers
        self.idempotency_keys = idempotency_keys  # as a gateway that retries would send
        self.latencies_ms: list[float] = []
        self.started_at: list[float] = []  # perf_counter at send, beside each latency
        self.status: dict[int, int] = {}
        self.errors = 0
        self.error_kinds: dict[str, int] = {}  # what each transport error was
        self.problems: dict[str, int] = {}
        self.waited = 0  # issued while every pooled connection was busy: queued, not dropped
        # The 2xx answers' bodies, read after the run (parsing them here would take the
        # generator's CPU from the cores it measures): each names its check-in.
        self.accepted_answers: list[bytes] = []

    async def one(self, http: HttpPool, cadre: str, body: dict[str, Any]) -> bool:
        began = time.perf_counter()
        try:
            async with asyncio.timeout(REQUEST_DEADLINE_S):
                status, answer = await http.post_json(
                    "/v1/check-ins", body, self.headers_for(cadre)
                )
        except (HttpError, OSError, TimeoutError) as exc:
            self.errors += 1
            kind = f"{type(exc).__name__}: {exc}"[:120]
            self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1
            return False
        if status >= 400:  # which rule refused it, not only that something did
            code = f"{status} {problem_code(answer)}"
            self.problems[code] = self.problems.get(code, 0) + 1
        self.latencies_ms.append((time.perf_counter() - began) * 1000)
        self.started_at.append(began)
        self.status[status] = self.status.get(status, 0) + 1
        if 200 <= status < 300:
            self.accepted_answers.append(answer)
            return True
        return False

    def headers_for(self, cadre: str) -> dict[str, str]:
        if not self.idempotency_keys:
            return self.headers[cadre]
        return {**self.headers[cadre], "Idempotency-Key": str(uuid.uuid4())}

    def timeline(self, bucket_s: float = 5.0) -> list[dict[str, float]]:
        """Answers and latency per `bucket_s` of sending time: where in the run a tail is."""
        if not self.started_at:
            return []
        first = min(self.started_at)
        buckets: dict[int, list[float]] = {}
        for sent, latency in zip(self.started_at, self.latencies_ms, strict=True):
            buckets.setdefault(int((sent - first) // bucket_s), []).append(latency)
        return [
            {"from_s": index * bucket_s, "answered": len(values),
             "p50_ms": round(percentile(values, 0.5), 1),
             "p99_ms": round(percentile(values, 0.99), 1)}
            for index, values in sorted(buckets.items())
        ]  # fmt: skip

    @property
    def accepted(self) -> int:
        return sum(n for code, n in self.status.items() if 200 <= code < 300)

    def acknowledged_check_ins(self) -> set[str]:
        return {json.loads(answer)["check_in_id"] for answer in self.accepted_answers}


async def run_load(
    load: Load,
    people: list[Person],
    rate: float,
    seconds: float,
    probe: Any = None,
) -> float:
    """Issue exactly `rate` x `seconds` requests, the k-th at k / `rate` seconds, then wait
    for every answer; returns the seconds until the last one. A request issued while all
    `MAX_IN_FLIGHT` connections are busy waits for one, as behind a gateway's pool, and
    that wait is part of its latency: none is dropped by the client."""
    rnd = random.Random(3)  # noqa: S311 - benchmark data
    tasks: set[asyncio.Task[Any]] = set()
    total = round(rate * seconds)
    async with client(load.url) as http:
        began = time.perf_counter()
        sent = 0
        while sent < total:
            due = min(total, int((time.perf_counter() - began) * rate) + 1)
            while sent < due:
                if len(tasks) >= MAX_IN_FLIGHT:
                    load.waited += 1
                person = people[sent % len(people)]
                if probe is not None and sent % PROBE_EVERY == 0:
                    task = asyncio.create_task(probe())
                else:
                    task = asyncio.create_task(
                        load.one(http, person.cadre_id, body_for(person, rnd))
                    )
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(0.002)
        await asyncio.gather(*tasks)
        return time.perf_counter() - began


async def checked_in_events(bootstrap: str, at_least: int) -> set[str]:
    """The check-ins of the `attendance.checked_in` events in Kafka (a relay's redelivery
    counts once)."""
    return checked_in_ids(await read_topic(bootstrap, "attendance.events.v1", at_least=at_least))


def checked_in_ids(records: Iterable[Any]) -> set[str]:
    """The check-in ids of the `attendance.checked_in` records among `records`."""
    ids = set()
    for record in records:
        if header_map(record.headers).get("ce_type") == "attendance.checked_in":
            ids.add(json.loads(record.value)["check_in_id"])
    return ids


def reconcile(acknowledged: set[str], in_kafka: set[str]) -> dict[str, int]:
    """Check-ins matched by id: `lost` were answered 2xx and are not in Kafka; the
    `unanswered_in_kafka` are in Kafka but their request got no 2xx in time (a client
    timeout), which an at-least-once API allows and a count alone would net off against
    the lost."""
    return {
        "lost_events": len(acknowledged - in_kafka),
        "unanswered_in_kafka": len(in_kafka - acknowledged),
    }


async def wait_for_replica(
    infra: Infra, database: str, url: str, person: Person, headers: dict[str, str], cadres: int
) -> str:
    """Until attendance's replica holds every cadre (else the load meets `unknown-cadre`
    refusals that say nothing about ingest) and a first check-in went through; returns
    that check-in's id."""
    replica = await asyncpg.connect(infra.pg_url(database, "postgresql"))
    try:
        for _ in range(600):
            known = await replica.fetchval("SELECT count(*) FROM people WHERE tenant = $1", TENANT)
            if known >= cadres:
                break
            await asyncio.sleep(0.5)
        else:
            raise RuntimeError(f"attendance's replica holds {known} of {cadres} cadres")
    finally:
        await replica.close()
    rnd = random.Random(1)  # noqa: S311
    first = body_for(person, rnd)
    async with client(url) as http:
        status, answer = await http.post_json("/v1/check-ins", first, headers)
    if status != 201:
        raise RuntimeError(f"the first check-in failed: {answer.decode(errors='replace')}")
    first_id: str = json.loads(answer)["check_in_id"]
    return first_id


DAY_CLOSE_INTERVAL_S = 60  # attendance's default `day_close_interval_s`


async def past_days_closed(infra: Infra, database: str, replica_complete_at: float) -> None:
    """Until attendance's day-close job has closed the county's past days and the relay
    has published them (so scoring folds them now, not in the measured run), as in a
    county that has been running for a while. The job's first pass, at start-up, finds
    the replica still filling; a pass that starts after the replica is complete (within
    one interval of it) catches up. Without this wait that catch-up landed about 45 s
    into the ingest run and doubled its p50 from there."""
    settled = replica_complete_at + DAY_CLOSE_INTERVAL_S + 2
    if (wait := settled - time.monotonic()) > 0:
        say(f"waiting {wait:.0f} s for the day close's pass over the whole replica")
        await asyncio.sleep(wait)
    replica = await asyncpg.connect(infra.pg_url(database, "postgresql"))
    try:
        began, last = time.monotonic(), -1
        while time.monotonic() - began < 120:
            closed = await replica.fetchval("SELECT count(*) FROM day_closes")
            pending = await replica.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            )
            if closed == last and not pending:
                say(f"{closed:,} past cadre-days closed and published before the run")
                return
            last = closed
            await asyncio.sleep(2)
        say(f"the day close had closed {last:,} past cadre-days and was still going; going on")
    finally:
        await replica.close()


async def scoring_caught_up(bootstrap: str, timeout_s: float = 300) -> float:
    """Until scoring has settled everything published so far (its lag is 0); returns the
    seconds it took. It folds the county's closed days live, one batch after another: a
    fixed 3-s pause stood for this before (it took 0-1.6 s when measured)."""
    began = time.perf_counter()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    ends_of = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await ends_of.start()
    try:
        groups = [group for group, _ in await admin.list_consumer_groups()]
        scoring = [group for group in groups if group.startswith("scoring-")]
        if len(scoring) != 1:
            raise RuntimeError(f"expected one scoring consumer group, found {scoring}")
        while (lag := await _lag(admin, ends_of, scoring[0])) > 0:
            if time.perf_counter() - began > timeout_s:
                raise RuntimeError(f"scoring was still {lag:,} records behind after {timeout_s} s")
            await asyncio.sleep(0.5)
    finally:
        await ends_of.stop()
        await admin.close()
    return time.perf_counter() - began


async def _lag(admin: AIOKafkaAdminClient, ends_of: AIOKafkaConsumer, group: str) -> int:
    """Records not yet settled by `group` (its offsets as last committed, about every
    second): over every partition of the topics it has committed on, a partition it has
    not committed on yet counting from the start."""
    committed = await admin.list_consumer_group_offsets(group)
    topics = sorted({tp.topic for tp in committed})
    if not topics:  # nothing committed yet (an empty list would describe every topic)
        return 0
    partitions = sorted(
        TopicPartition(topic["topic"], partition["partition"])
        for topic in await admin.describe_topics(topics)
        for partition in topic["partitions"]
    )
    ends = await ends_of.end_offsets(partitions)
    return sum(
        max(0, ends[tp] - (committed[tp].offset if tp in committed else 0)) for tp in partitions
    )


def measure(
    infra: Infra,
    cadres: int,
    rate: float,
    seconds: float,
    e2e_rate: float,
    workers: int,
    idempotency_keys: bool = False,
    e2e_seconds: float = 30,
    count_cpu: bool = False,
) -> dict[str, Any]:
    probes_needed = int(e2e_rate * e2e_seconds / PROBE_EVERY) + 1
    if cadres // 2 < probes_needed:
        raise SystemExit(
            f"{e2e_seconds:.0f} s of end-to-end probes at {e2e_rate:.0f}/s need {probes_needed:,}"
            f" cadres without points (half of --cadres): use --cadres {2 * probes_needed + 2}"
        )
    county = County(cadres, 1, tenant=TENANT)
    say(f"publishing the directory of {cadres:,} cadres")
    directory = [e for e in county.events() if e.source == "directory"]
    asyncio.run(publish(infra.kafka_bootstrap, iter(directory)))
    mint = TokenMint(TENANT)
    keys_url = serve_jwks(mint)
    headers = {p.cadre_id: mint.headers(p.cadre_id, p.unit.path, Role.CADRE) for p in county.people}
    env = {
        "CADRE_ATTENDANCE_DIRECTORY_URL": keys_url,
        "CADRE_SCORING_DIRECTORY_URL": keys_url,
        "CADRE_ATTENDANCE_LOG_LEVEL": "WARNING",
        "CADRE_SCORING_LOG_LEVEL": "WARNING",
        "CADRE_ATTENDANCE_RELAY_POLL_INTERVAL_S": "0.05",
        "CADRE_ATTENDANCE_HTTP_WORKERS": str(workers),
    }
    logs = BENCH_STACK / "logs"
    # Everything runs on this one machine, so the services reach PostgreSQL over its Unix
    # socket rather than loopback TCP: attendance used 12-26 µs less CPU a check-in in three
    # interleaved pairs of 60-s runs (PostgreSQL -6 to +11 µs).
    with service_stack(
        infra, logs, ("attendance", "scoring"), env, database_over_socket=True
    ) as stack:
        database = stack["attendance"].database
        assert database is not None
        # uvloop, as the services run: the generator shares the cores it measures, and on
        # asyncio's own loop it took about 8% more CPU a request (measured at 700/s).
        return uvloop.run(
            drive(infra, database, stack.url("attendance"), stack.url("scoring"), county,
                  headers, rate, seconds, e2e_rate, idempotency_keys, e2e_seconds, count_cpu)
        )  # fmt: skip


async def drive(
    infra: Infra,
    database: str,
    url: str,
    scoring: str,
    county: County,
    headers: dict[str, dict[str, str]],
    rate: float,
    seconds: float,
    e2e_rate: float,
    idempotency_keys: bool = False,
    e2e_seconds: float = 30,
    count_cpu: bool = False,
) -> dict[str, Any]:
    warm, people = county.people[0], county.people[1:]
    first = await wait_for_replica(
        infra, database, url, warm, headers[warm.cadre_id], len(county.people)
    )
    replica_complete_at = time.monotonic()
    # Every phone is bound first, as in a county that has been running for a while: the
    # one-time bind is extra writes, and 2,000 of them in the measured window made its
    # first 10 s look like overload (p99 5.6 s, then 160-460 ms once bound).
    say(f"binding {len(people):,} phones (not measured)")
    binding = Load(url, headers)
    await run_load(binding, people, BIND_RATE, len(people) / BIND_RATE)
    await past_days_closed(infra, database, replica_complete_at)
    caught_up = await scoring_caught_up(infra.kafka_bootstrap)
    say(f"scoring had folded them {caught_up:.1f} s later")
    await asyncio.sleep(2)
    # The load generator times every answer on its own event loop, so its own pauses count
    # as the service's latency. With the county and the binding run on its heap, a full
    # collection early in the run paused it for 95 ms (a gc callback, one probe run),
    # which also held back ~140 requests and then sent them at once. The services tune
    # their collector the same way at start-up.
    tune_garbage_collector()
    say(f"ingest: {rate:,.0f} check-ins/s for {seconds:.0f} s")
    load = Load(url, headers, idempotency_keys)
    with CpuAccount() if count_cpu else nullcontext() as account:
        answered_in = await run_load(load, people, rate, seconds)
    acknowledged = load.acknowledged_check_ins() | binding.acknowledged_check_ins() | {first}
    accepted = len(acknowledged)
    await asyncio.sleep(3)  # the relay's last batch
    in_kafka = await checked_in_events(infra.kafka_bootstrap, at_least=accepted)
    ingest = {
        "offered_per_s": rate,
        # Over the window the requests were offered in; `last_answer_s` says how long
        # after its start the last one was answered.
        "accepted_per_s": round(load.accepted / seconds, 1),
        "last_answer_s": round(answered_in, 2),
        "p50_ms": round(percentile(load.latencies_ms, 0.50), 1),
        "p99_ms": round(percentile(load.latencies_ms, 0.99), 1),
        "status_counts": {str(k): v for k, v in sorted(load.status.items())},
        "problems": dict(sorted(load.problems.items())),
        "transport_errors": load.errors,
        "transport_error_kinds": dict(sorted(load.error_kinds.items())),
        "waited_for_a_connection": load.waited,
        "accepted": load.accepted,
        "accepted_with_binding": accepted,
        "checked_in_events_in_kafka": len(in_kafka),
        **reconcile(acknowledged, in_kafka),
        "timeline": load.timeline(),
    }
    if account is not None:  # where each accepted check-in's CPU went, by kind of process
        ingest["cpu_seconds"] = account.seconds
        ingest["cpu_us_per_accepted"] = {
            kind: round(s / max(load.accepted, 1) * 1e6) for kind, s in account.seconds.items()
        }
    say(f"  {ingest}")

    probes = iter(people[len(people) // 2 :])
    e2e_ms: list[float] = []
    e2e_at: list[float] = []  # when each probe began, for the per-window figures
    post_ms: list[float] = []  # of which the check-in's own answer
    rnd = random.Random(5)  # noqa: S311

    async def probe(record: bool = True) -> None:
        person = next(probes)
        began = time.perf_counter()
        status, _ = await probe_http.post_json(
            "/v1/check-ins", body_for(person, rnd, True), headers[person.cadre_id]
        )
        if status != 201:
            return
        if record:
            post_ms.append((time.perf_counter() - began) * 1000)
        radar = probe_radar.request_bytes(
            "GET", f"/v1/cadres/{person.cadre_id}/radar", headers[person.cadre_id]
        )
        while time.perf_counter() - began < (30 if record else 300):
            status, shown = await probe_radar.send(radar)
            seen = json.loads(shown) if status == 200 else None
            if seen is not None and seen["dimensions"]["politics"] > 0:
                if record:
                    e2e_ms.append((time.perf_counter() - began) * 1000)
                    e2e_at.append(began)
                return
            # Every 20 ms: finer polling of many outstanding probes loaded scoring with radar
            # reads (60% of its time, profiled) and so measured its own load.
            await asyncio.sleep(0.02)

    # Scoring first folds the ingest run's backlog: a probe behind it would time the backlog.
    drain_began = time.perf_counter()
    probe_http, probe_radar = client(url), client(scoring)
    await probe(record=False)
    say(f"scoring caught up with the ingest run in {time.perf_counter() - drain_began:.1f} s")
    say(f"end to end at {e2e_rate:,.0f} check-ins/s for {e2e_seconds:.0f} s")
    background = Load(url, headers, idempotency_keys)
    e2e_began = time.perf_counter()
    await run_load(background, people[: len(people) // 2], e2e_rate, e2e_seconds, probe)
    await probe_http.close()
    await probe_radar.close()
    windows: dict[int, list[float]] = {}
    for at, ms in zip(e2e_at, e2e_ms, strict=True):
        windows.setdefault(int((at - e2e_began) // E2E_WINDOW_S), []).append(ms)
    e2e = {
        "rate_per_s": e2e_rate,
        "probes": len(e2e_ms),
        "p50_ms": round(percentile(e2e_ms, 0.50), 1),
        "p99_ms": round(percentile(e2e_ms, 0.99), 1),
        "post_p50_ms": round(percentile(post_ms, 0.50), 1),
        "post_p99_ms": round(percentile(post_ms, 0.99), 1),
        "background_accepted_per_s": round(background.accepted / e2e_seconds, 1),
        "seconds": e2e_seconds,
        # p99 per window: how much of the spread between runs is within one run
        "windows": [
            {
                "from_s": index * E2E_WINDOW_S,
                "probes": len(values),
                "p99_ms": round(percentile(values, 0.99), 1),
            }
            for index, values in sorted(windows.items())
        ],
    }
    say(f"  {e2e}")
    return {"benchmark": "ingest", "machine": describe(), "cadres": len(county.people),
        "seconds": seconds, "ingest": ingest, "e2e": e2e}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cadres", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=1500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--e2e-rate", type=float, default=300)
    parser.add_argument(
        "--e2e-seconds", type=float, default=30, help="longer runs need more --cadres"
    )
    parser.add_argument("--workers", type=int, default=2, help="attendance's HTTP worker processes")
    parser.add_argument(
        "--idempotency-keys",
        action="store_true",
        help="send an Idempotency-Key with every check-in, as a retrying gateway would",
    )
    parser.add_argument(
        "--cpu", action="store_true", help="CPU seconds per kind of process during the ingest run"
    )
    parser.add_argument("--out", default="ingest", help="result file name in bench/results")
    args = parser.parse_args()
    with bench_infra() as infra:
        result = measure(
            infra,
            args.cadres,
            args.rate,
            args.seconds,
            args.e2e_rate,
            args.workers,
            args.idempotency_keys,
            args.e2e_seconds,
            args.cpu,
        )
        result["attendance_http_workers"] = args.workers
        result["idempotency_keys"] = args.idempotency_keys
    write_result(args.out, result)


if __name__ == "__main__":
    main()
