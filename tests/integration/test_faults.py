"""Fault injection: under a steady load of check-ins and leave requests through the APIs,
each fault happens once (SIGKILL of attendance, scoring, notify and the outbox relay, then a
restart of Kafka and of PostgreSQL). After recovery from each:

- every check-in answered 2xx is in scoring's counters exactly once (a branch-activity fact
  keyed by its check-in id), and nothing else is;
- the live projection's digest equals the digest of a fresh replay of the log;
- every leave request answered 2xx reached its approvers' inboxes, and no notification was
  delivered twice.

The client behaves like the mobile gateway: it retries a failed request with the same
Idempotency-Key until it gets an answer, so a request lost in a crash is not lost to the user.
The summary (faults survived, events lost, duplicates) is written to
test-artifacts/faults/summary.json and quoted in the README."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from cadre.devstack.demo_activity import CADRES, DemoClient
from cadre.devstack.infra import Infra
from cadre.devstack.kafka import KafkaServer
from cadre.devstack.postgres import PostgresServer
from cadre.devstack.processes import kill_process, spawn
from cadre.devstack.service_stack import ServiceStack, service_stack
from cadre.devstack.testing import unique_tenant, wait_until
from cadre.events.calendar import WorkdayCalendar

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("CADRE_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "faults"
NAMES = ("directory", "attendance", "scoring", "notify")
WORKDAYS = WorkdayCalendar()
LOAD_SECONDS = 4.0  # of load before and after each fault
# Demo cadres of 乐业镇, whose township leader approves (and is told of) their leave.
LEAVE_REQUESTERS = ("cadre1", "cadre2", "cadre4", "cadre5")


@dataclass
class Ledger:
    """What the platform answered 2xx, from the client's side."""

    check_ins: list[str] = field(default_factory=list)
    leaves: list[str] = field(default_factory=list)
    retries: int = 0
    transport_errors: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)  # keys whose first try crashed
    refused: list[str] = field(default_factory=list)  # 4xx: a test bug, never expected


class SteadyLoad:
    """Branch-activity check-ins (each one scoring fact) from the demo cadres, with a leave
    request every tenth round (each one an approver notification)."""

    def __init__(self, urls: dict[str, str], tenant: str) -> None:
        self.client = DemoClient(urls, tenant, timeout_s=5)
        self.ledger = Ledger()
        self.running = threading.Event()
        self.stopped = threading.Event()
        self.sequence = 0
        self.leave_day = date.today() + timedelta(days=30)
        for cadre in CADRES:
            self.client.login(cadre)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _post(
        self, path: str, cadre: str, body: Mapping[str, object], key: str
    ) -> dict[str, object]:
        """Retry with the same key until the platform answers: 2xx or 4xx, never lost."""
        while True:
            try:
                answer = self.client.http.post(
                    self.client.urls["attendance"] + path,
                    json=body,
                    headers={
                        "authorization": f"Bearer {self.client.login(cadre)}",
                        "idempotency-key": key,
                    },
                )
                if answer.status_code == 409 and "in-progress" in answer.text:
                    # The first try died with its process mid-request: its outcome is
                    # unknown until the key's lease ends, so a gateway would queue it.
                    self.ledger.unanswered.append(key)
                    return {}
                if answer.status_code < 500:
                    if answer.status_code >= 400:
                        self.ledger.refused.append(f"{path} {answer.status_code} {answer.text}")
                    return dict(answer.json())
            except (httpx.HTTPError, ValueError) as exc:  # no answer, or not a whole one
                self.ledger.transport_errors.append(repr(exc)[:200])
            self.ledger.retries += 1
            time.sleep(0.2)

    def _run(self) -> None:
        while not self.stopped.is_set():
            if not self.running.wait(0.1):
                continue
            self.sequence += 1
            cadre = CADRES[self.sequence % len(CADRES)]
            body = {
                "device_id": f"demo-phone-{cadre}",
                "mode": "meeting",
                "branch_activity": True,
                "lat": 25.38,
                "lon": 106.09,
                "accuracy_m": 10.0,
                "occurred_at": datetime.now(UTC).isoformat(),
                "note": "主题党日",
            }
            answer = self._post("/v1/check-ins", cadre, body, f"fault-ci-{self.sequence}")
            if "check_in_id" in answer:
                self.ledger.check_ins.append(str(answer["check_in_id"]))
            if self.sequence % 10 == 0:
                self.leave_day += timedelta(days=1)
                while not WORKDAYS.is_workday(self.leave_day):
                    self.leave_day += timedelta(days=1)
                leave = {
                    "kind": "personal",
                    "starts_on": self.leave_day.isoformat(),
                    "ends_on": self.leave_day.isoformat(),
                    "reason": "办事",
                }
                requester = LEAVE_REQUESTERS[self.sequence // 10 % len(LEAVE_REQUESTERS)]
                key = f"fault-lv-{self.sequence}"
                answer = self._post("/v1/leaves", requester, leave, key)
                if "leave_id" in answer:
                    self.ledger.leaves.append(str(answer["leave_id"]))
            time.sleep(0.02)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)
        self.client.close()


@dataclass
class Platform:
    infra: Infra
    stack: ServiceStack
    tenant: str
    logs: Path
    relay: subprocess.Popen[bytes] | None = None

    def start_relay(self) -> None:
        attendance = self.stack["attendance"]
        self.relay = spawn(
            [sys.executable, "-m", "cadre.events.cli", "relay", "--service", "attendance"],
            self.logs / "relay.log",
            env={
                "CADRE_RELAY_DATABASE_URL": self.infra.pg_url(str(attendance.database)),
                "CADRE_KAFKA_BOOTSTRAP": self.infra.kafka_bootstrap,
            },
        )

    def kill_relay(self) -> None:
        assert self.relay is not None
        kill_process(self.relay)
        self.relay = None

    def scoring_env(self) -> dict[str, str]:
        return {**os.environ, **self.stack["scoring"].env}

    def scoring_cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "cadre.scoring.entrypoints.cli", *args],
            env=self.scoring_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.strip().splitlines()[-1]

    async def branch_facts(self) -> dict[str, int]:
        """Check-in id → how many facts of the live generation carry it."""
        connection = await asyncpg.connect(
            self.infra.pg_url(str(self.stack["scoring"].database), "postgresql")
        )
        try:
            rows = await connection.fetch(
                "SELECT key, count(*) AS n FROM facts WHERE tenant = $1"
                " AND metric = 'branch_activity'"
                " AND generation = (SELECT generation FROM read_pointer WHERE id = 1)"
                " GROUP BY key",
                self.tenant,
            )
            return {row["key"]: row["n"] for row in rows}
        finally:
            await connection.close()

    async def leave_notifications(self) -> tuple[set[str], int]:
        """The leaves that notified an approver, and how many (source, recipient, kind)
        triples were stored more than once."""
        connection = await asyncpg.connect(
            self.infra.pg_url(str(self.stack["notify"].database), "postgresql")
        )
        try:
            leaves = await connection.fetch(
                "SELECT DISTINCT params->>'leave_id' AS leave_id FROM notifications"
                " WHERE tenant = $1 AND kind = 'leave_awaiting'",
                self.tenant,
            )
            repeated = await connection.fetchval(
                "SELECT count(*) FROM (SELECT 1 FROM notifications WHERE tenant = $1"
                " GROUP BY source, recipient_id, kind HAVING count(*) > 1) AS d",
                self.tenant,
            )
            return {row["leave_id"] for row in leaves}, int(repeated)
        finally:
            await connection.close()


@pytest.fixture(scope="module")
def platform(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    if {"Kafka", "PostgreSQL"} - set(infra.started):
        pytest.fail(
            "the fault test restarts Kafka and PostgreSQL, so it needs the servers this test"
            " run started: stop `make up` (or any server on the test ports) and run again"
        )
    logs = tmp_path_factory.mktemp("fault-logs")
    tenant = unique_tenant()
    env = {
        "CADRE_DIRECTORY_LOAD_DEMO": "true",
        "CADRE_DIRECTORY_DEMO_TENANT": tenant,
        "CADRE_ATTENDANCE_RELAY_ENABLED": "false",  # the relay runs as its own process
        "CADRE_SCORING_LIGHTS_INTERVAL_S": "5",
    }
    with service_stack(infra, logs, NAMES, env) as stack:
        platform = Platform(infra, stack, tenant, logs)
        platform.start_relay()
        try:
            yield platform
        finally:
            if platform.relay is not None:
                kill_process(platform.relay)


def test_every_fault_is_survived_without_loss_or_duplicates(platform: Platform) -> None:
    stack, infra = platform.stack, platform.infra

    def restart_service(name: str) -> None:
        stack[name].kill()
        time.sleep(1)
        stack[name].start()

    def restart_relay() -> None:
        platform.kill_relay()
        time.sleep(1)
        platform.start_relay()

    def restart_server(server: KafkaServer | PostgresServer | None) -> None:
        assert server is not None
        server.stop()
        time.sleep(1)
        server.start()

    faults: list[tuple[str, Callable[[], None]]] = [
        ("SIGKILL attendance", lambda: restart_service("attendance")),
        ("SIGKILL scoring", lambda: restart_service("scoring")),
        ("SIGKILL notify", lambda: restart_service("notify")),
        ("SIGKILL outbox relay", restart_relay),
        ("restart Kafka", lambda: restart_server(infra.kafka)),
        ("restart PostgreSQL", lambda: restart_server(infra.postgres)),
    ]
    load = SteadyLoad({name: stack.url(name) for name in NAMES}, platform.tenant)
    summary: list[dict[str, object]] = []
    try:
        for name, inject in faults:
            began = time.monotonic()
            load.running.set()
            time.sleep(LOAD_SECONDS)
            inject()
            time.sleep(LOAD_SECONDS)
            load.running.clear()
            time.sleep(0.5)  # let a request in flight finish
            ledger = load.ledger
            accepted = set(ledger.check_ins)
            assert len(accepted) == len(ledger.check_ins), "an idempotent retry answered twice"

            def all_counted(expected: set[str] = accepted) -> bool:
                return expected <= set(asyncio.run(platform.branch_facts()))

            wait_until(all_counted, 180, f"scoring to count every check-in after {name}")
            facts = asyncio.run(platform.branch_facts())
            duplicates = {key: n for key, n in facts.items() if n != 1}
            unexpected = set(facts) - accepted
            assert not duplicates, f"{name}: counted more than once: {duplicates}"
            # Only a request whose process died before answering may count without a 2xx.
            assert len(unexpected) <= len(ledger.unanswered), f"{name}: {unexpected}"

            wanted = set(ledger.leaves)

            def all_notified(expected: set[str] = wanted) -> bool:
                return expected <= asyncio.run(platform.leave_notifications())[0]

            try:
                wait_until(all_notified, 300, f"approvers to hear of every leave after {name}")
            except AssertionError as timed_out:  # name what is missing at the deadline
                missing = wanted - asyncio.run(platform.leave_notifications())[0]
                raise AssertionError(f"{timed_out}: missing {missing}") from None
            notified, repeated = asyncio.run(platform.leave_notifications())
            assert repeated == 0, f"{name}: {repeated} notifications stored twice"

            live = platform.scoring_cli("digest", "--tenant", platform.tenant)
            replayed = json.loads(platform.scoring_cli("replay", "--json", "--keep"))
            fresh = platform.scoring_cli(
                "digest", "--tenant", platform.tenant, "--generation", str(replayed["generation"])
            )
            assert live == fresh, f"{name}: the live projection differs from a fresh replay"
            assert not ledger.refused, ledger.refused
            summary.append(
                {
                    "fault": name,
                    "check_ins_accepted": len(accepted),
                    "leaves_accepted": len(wanted),
                    "client_retries": ledger.retries,
                    "unanswered_after_crash": len(ledger.unanswered),
                    "events_lost": len(accepted - set(facts)) + len(wanted - notified),
                    "duplicates": sum(n - 1 for n in facts.values()) + repeated,
                    "live_equals_replay": live == fresh,
                    "seconds": round(time.monotonic() - began, 1),
                }
            )
    finally:
        load.close()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    assert [row["fault"] for row in summary] == [name for name, _ in faults]
