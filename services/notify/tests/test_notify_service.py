"""Notify as it runs: a real process on real Kafka and PostgreSQL, sending email to a real
SMTP server and webhooks to a real HTTP receiver, both started here. Events are published
the way the other services publish them; tokens are minted as the directory would, and the
receiver also serves their JWKS."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cadre.devstack.infra import Infra, create_databases, create_topics
from cadre.devstack.ports import free_port
from cadre.devstack.processes import kill_process, spawn, stop_process
from cadre.devstack.synthetic import SyntheticTenant
from cadre.devstack.testing import TokenMint, eventually, publish_events, unique_tenant
from cadre.events.catalogue import EVENT_ADAPTER, AnyEvent
from cadre.events.db import create_engine, migrate_async, session_factory
from cadre.events.envelope import new_event_id
from cadre.events.vocabulary import LeaderLevel, Role
from cadre.notify.adapters.schedule import remind, send_digests
from cadre.notify.adapters.tables import deliveries, notifications, people
from cadre.notify.domain.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, verify
from cadre.notify.entrypoints.jobs import routing_config
from cadre.notify.settings import NotifySettings

pytestmark = [pytest.mark.integration]
SHANGHAI = ZoneInfo("Asia/Shanghai")


# ------------------------------------------------------------------ the test's own servers


@dataclass
class Receiver:
    """A real HTTP server: the directory's JWKS, and webhook endpoints that answer 200, fail
    a set number of times per delivery first, or always fail."""

    jwks: dict[str, Any]
    requests: list[tuple[str, dict[str, str], bytes, int]] = field(default_factory=list)
    fail_first: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def serve(self) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _answer(self, status: int, body: bytes = b"{}") -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/.well-known/jwks.json":
                    self._answer(200, json.dumps(receiver.jwks).encode())
                else:
                    self._answer(404)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                name = self.path.rsplit("/", 1)[-1]
                delivery = self.headers.get(DELIVERY_HEADER, "")
                with receiver.lock:
                    seen = sum(
                        1
                        for path, headers, _, _ in receiver.requests
                        if path == self.path and headers.get(DELIVERY_HEADER) == delivery
                    )
                    failing = name == "down" or seen < receiver.fail_first.get(name, 0)
                    status = 500 if failing else 200
                    receiver.requests.append((self.path, dict(self.headers), body, status))
                self._answer(status)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def to(self, name: str) -> list[tuple[dict[str, str], bytes, int]]:
        with self.lock:
            return [(h, b, s) for p, h, b, s in self.requests if p == f"/hooks/{name}"]


class Mailbox:
    """A real SMTP server (aiosmtpd) keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]


# ------------------------------------------------------------------ the notify process


@dataclass
class Notify:
    tenant: str
    synthetic: SyntheticTenant
    mint: TokenMint
    env: dict[str, str]
    port: int
    database_url: str
    bootstrap: str
    topics: dict[str, str]
    receiver: Receiver
    mailbox: Mailbox
    sessions: async_sessionmaker[AsyncSession]
    logs: Path
    burst_mint: TokenMint
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = spawn(
            [sys.executable, "-m", "cadre.notify"], self.logs / "notify.log", env=self.env
        )

    async def ready(self) -> None:
        async def up() -> bool:
            try:
                async with httpx.AsyncClient() as client:
                    return (await client.get(self.url + "/readyz")).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(up, timeout_s=60, message="notify to be ready")

    def who(
        self, cadre: str, path: str, *roles: Role, level: LeaderLevel | None = None
    ) -> dict[str, str]:
        return self.mint.headers(cadre, path, *roles, level=level)

    def cadre(self, n: int) -> dict[str, str]:
        return self.who(self.synthetic.cadre_id(n), self.synthetic.unit_path(n))

    def admin(self) -> dict[str, str]:
        return self.who("orgadmin", f"/{self.tenant}", Role.ORG_ADMIN)

    async def publish(self, events: list[AnyEvent]) -> None:
        await publish_events(self.bootstrap, events, lambda e: self.topics[e.source])

    def event(self, event_type: str, subject: str, data: dict[str, Any], **extra: Any) -> AnyEvent:
        unit = (
            self.synthetic.unit_path(int(subject[1:]))
            if subject[1:].isdigit()
            else f"/{self.tenant}"
        )
        unit = extra.pop("unit_path", unit)
        return EVENT_ADAPTER.validate_python(
            {
                "id": new_event_id(),
                "type": event_type,
                "source": event_type.split(".")[0],
                "tenant": extra.pop("tenant", self.tenant),
                "subject": subject,
                "unit_path": unit,
                "occurred_at": datetime(2026, 11, 2, 9, tzinfo=UTC),
                "actor": extra.pop("actor", subject),
                "data": data,
                **extra,
            }
        )

    async def inbox(self, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.url) as client:
            response = await client.get("/v1/inbox", headers=headers, params=params)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def inbox_has(
        self, headers: dict[str, str], kind: str, count: int = 1
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []

        async def check() -> bool:
            nonlocal found
            found = await self.inbox(headers, kind=kind)
            return len(found) >= count

        await eventually(check, message=f"{count} {kind} notification(s)")
        return found

    async def scalar(self, query: sa.Select[Any]) -> Any:
        async with self.sessions() as session:
            return await session.scalar(query)


def directory_events(notify_tenant: str, synthetic: SyntheticTenant) -> list[AnyEvent]:
    """The synthetic cadres, plus leaders of each township and the county, and an org admin."""
    events = list(synthetic.directory())
    before = datetime(2026, 8, 31, tzinfo=UTC)

    def add(event_type: str, subject: str, path: str, data: dict[str, Any]) -> None:
        events.append(
            EVENT_ADAPTER.validate_python(
                {
                    "id": new_event_id(),
                    "type": event_type,
                    "source": "directory",
                    "tenant": notify_tenant,
                    "subject": subject,
                    "unit_path": path,
                    "occurred_at": before,
                    "actor": "setup",
                    "data": data,
                }
            )
        )

    root = f"/{notify_tenant}"
    for cadre, unit, level in (
        ("lead-east", "east", "township"),
        ("lead-west", "west", "township"),
        ("lead-county", notify_tenant, "county"),
    ):
        path = root if unit == notify_tenant else f"{root}/{unit}"
        add(
            "directory.cadre_registered",
            cadre,
            path,
            {"cadre_id": cadre, "name": f"{cadre} 书记", "unit_id": unit, "leader_level": level},
        )
    add(
        "directory.cadre_registered",
        "orgadmin",
        root,
        {"cadre_id": "orgadmin", "name": "组织部", "unit_id": notify_tenant},
    )
    add("directory.role_granted", "orgadmin", root, {"cadre_id": "orgadmin", "role": "org_admin"})
    return events


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest_asyncio.fixture(scope="module")
async def notify(
    infra: Infra,
    kafka_bootstrap: str,
    tmp_path_factory: Any,
    mailbox: tuple[Mailbox, int],
) -> AsyncIterator[Notify]:
    tenant = unique_tenant()
    database = f"notify_{uuid.uuid4().hex[:8]}"
    await create_databases(infra.pg_url("postgres", "postgresql"), [database])
    url = infra.pg_url(database)
    await migrate_async("cadre.notify.adapters.migrations", url)
    suffix = uuid.uuid4().hex[:8]
    topics = {
        s: f"notify-test-{s}.{suffix}.v1" for s in ("directory", "attendance", "journal", "scoring")
    }
    await create_topics(
        kafka_bootstrap,
        [t for name in topics.values() for t in (name, name + ".dlq")],
        partitions=2,
    )
    mint = TokenMint(tenant)
    burst_mint = TokenMint(unique_tenant())  # a second tenant, for the crash test
    receiver = Receiver({"keys": mint.jwks()["keys"] + burst_mint.jwks()["keys"]})
    server = receiver.serve()
    box, smtp_port = mailbox
    port = free_port()
    env = {
        "CADRE_NOTIFY_DATABASE_URL": url,
        "CADRE_NOTIFY_HTTP_PORT": str(port),
        "CADRE_NOTIFY_DIRECTORY_URL": f"http://127.0.0.1:{receiver.port}",
        "CADRE_NOTIFY_INBOUND_TOPICS": json.dumps(list(topics.values())),
        "CADRE_NOTIFY_CONSUMER_GROUP": f"notify-test-{suffix}",
        "CADRE_NOTIFY_CONSUMER_MAX_RECORDS": "50",
        "CADRE_NOTIFY_SMTP_HOST": "127.0.0.1",
        "CADRE_NOTIFY_SMTP_PORT": str(smtp_port),
        "CADRE_NOTIFY_DELIVERY_POLL_S": "0.1",
        "CADRE_NOTIFY_RETRY_BASE_S": "0.2",
        "CADRE_NOTIFY_RETRY_MAX_ATTEMPTS": "4",
        "CADRE_NOTIFY_DELIVERY_LEASE_S": "3",
        "CADRE_NOTIFY_REMINDER_INTERVAL_S": "86400",
        "CADRE_NOTIFY_STREAM_KEEPALIVE_S": "1",
        "CADRE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CADRE_REDIS_URL": infra.redis_url,
        "CADRE_LOG_LEVEL": "WARNING",
    }
    synthetic = SyntheticTenant(tenant, cadres=8, days=0, start=date(2026, 9, 1))
    engine = create_engine(url)
    logs = tmp_path_factory.mktemp("notify-logs")
    notify = Notify(
        tenant,
        synthetic,
        mint,
        env,
        port,
        url,
        kafka_bootstrap,
        topics,
        receiver,
        box,
        session_factory(engine),
        logs,
        burst_mint,
    )
    notify.start()
    try:
        await notify.ready()
        await notify.publish(directory_events(tenant, synthetic))

        async def replica_ready() -> bool:
            count = await notify.scalar(
                sa.select(sa.func.count()).select_from(people).where(people.c.tenant == tenant)
            )
            return bool(count == 12)

        await eventually(replica_ready, message="notify's directory replica")
        yield notify
    finally:
        if notify.process is not None:
            stop_process(notify.process)
        server.shutdown()
        await engine.dispose()


# ------------------------------------------------------------------ live stream


@dataclass
class Stream:
    events: asyncio.Queue[dict[str, Any]]
    task: asyncio.Task[None]

    async def next(self, timeout_s: float = 20) -> dict[str, Any]:
        return await asyncio.wait_for(self.events.get(), timeout_s)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def open_stream(notify: Notify, token_headers: dict[str, str], **params: str) -> Stream:
    """An SSE client; returns once the server said `connected`."""
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    connected = asyncio.Event()

    async def read() -> None:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(10, read=60)) as client,
            client.stream(
                "GET", notify.url + "/v1/stream", headers=token_headers, params=params
            ) as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            current: dict[str, Any] = {}
            async for line in response.aiter_lines():
                if line.startswith(": connected"):
                    connected.set()
                elif line.startswith("id: "):
                    current["id"] = line[4:]
                elif line.startswith("event: "):
                    current["event"] = line[7:]
                elif line.startswith("data: "):
                    current["data"] = json.loads(line[6:])
                elif line == "" and "data" in current:
                    await events.put(current)
                    current = {}

    task = asyncio.create_task(read())
    await asyncio.wait_for(connected.wait(), 20)
    return Stream(events, task)


def light(notify: Notify, cadre: str, previous: str | None, current: str) -> AnyEvent:
    return notify.event(
        "scoring.light_changed",
        cadre,
        {"previous": previous, "current": current, "reasons": ["连续缺记"], "as_of": "2026-11-02"},
        actor="scoring",
    )


async def test_a_light_change_reaches_the_cadre_live_their_leader_and_the_org_department(
    notify: Notify,
) -> None:
    stream = await open_stream(notify, notify.cadre(0))
    try:
        await notify.publish([light(notify, "c000", "green", "red")])
        first = await stream.next()
    finally:
        await stream.close()
    assert first["event"] == "light_changed"
    assert first["data"]["title"] == "您的预警灯变为红灯"
    assert first["data"]["params"]["reasons"] == ["连续缺记"]

    east = notify.who(
        "lead-east", f"/{notify.tenant}/east", Role.LEADER, level=LeaderLevel.TOWNSHIP
    )
    [leader_note] = await notify.inbox_has(east, "light_changed_in_unit")
    assert leader_note["title"] == "cadre 0的预警灯变为红灯"
    await notify.inbox_has(notify.admin(), "light_changed_in_unit")
    west = notify.who(
        "lead-west", f"/{notify.tenant}/west", Role.LEADER, level=LeaderLevel.TOWNSHIP
    )
    assert await notify.inbox(west) == []  # not their unit

    # Offline for a while: a reconnect with Last-Event-ID receives what it missed, in order.
    missed = [
        light(notify, "c000", "red", "yellow"),
        notify.event("journal.journal_missed", "c000", {"day": "2026-11-02"}, actor="journal"),
    ]
    await notify.publish(missed)
    await notify.inbox_has(notify.cadre(0), "journal_missed")
    again = await open_stream(notify, {}, access_token=notify.cadre(0)["Authorization"][7:])
    await again.close()  # a fresh stream starts from now: nothing old is replayed
    assert again.events.empty()
    resumed = await open_stream(notify, {**notify.cadre(0), "Last-Event-ID": first["id"]})
    try:
        got = [await resumed.next(), await resumed.next()]
    finally:
        await resumed.close()
    # The two events come from different topics, so notify may store them in either order;
    # the stream replays them in the order they were stored, which is what ids promise.
    assert sorted(g["event"] for g in got) == ["journal_missed", "light_changed"]
    assert [int(g["id"]) for g in got] == [int(first["id"]) + 1, int(first["id"]) + 2]
    [changed] = [g for g in got if g["event"] == "light_changed"]

    async with httpx.AsyncClient(base_url=notify.url) as client:
        count = await client.get("/v1/inbox/unread-count", headers=notify.cadre(0))
        assert count.json() == {"unread": 3}
        read = await client.post(f"/v1/inbox/{changed['data']['id']}/read", headers=notify.cadre(0))
        assert read.status_code == 200
        assert read.json()["read_at"] is not None
        unread = await notify.inbox(notify.cadre(0), unread=True)
        assert {n["kind"] for n in unread} == {"light_changed", "journal_missed"}
        # A sequence number beyond PostgreSQL's bigint is refused, not a 500 (schemathesis).
        huge = await client.post(
            "/v1/inbox/read-all", headers=notify.cadre(0), json={"up_to_seq": 2**65}
        )
        assert huge.status_code == 422
        marked = await client.post("/v1/inbox/read-all", headers=notify.cadre(0), json={})
        assert marked.json() == {"marked": 2}
        # Someone else's notification is not found, not leaked.
        other = await client.post(
            f"/v1/inbox/{changed['data']['id']}/read", headers=notify.cadre(2)
        )
        assert other.status_code == 404
        assert other.headers["content-type"].startswith("application/problem+json")


# ------------------------------------------------------------------ email


async def test_email_reaches_a_real_smtp_server_with_the_right_subject_and_recipient(
    notify: Notify,
) -> None:
    async with httpx.AsyncClient(base_url=notify.url) as client:
        saved = await client.put(
            "/v1/preferences", headers=notify.cadre(2), json={"email": "c002@example.org"}
        )
        assert saved.status_code == 200, saved.text
    await notify.publish(
        [notify.event("journal.journal_missed", "c002", {"day": "2026-11-02"}, actor="journal")]
    )

    async def mailed() -> bool:
        return len(notify.mailbox.to("c002@example.org")) == 1

    await eventually(mailed, message="the email")
    [message] = notify.mailbox.to("c002@example.org")
    assert message["Subject"] == "2026-11-02工作日志缺记"
    body = message.get_content()
    assert "您2026-11-02（工作日）未填写工作日志" in body
    assert "No work journal for 2026-11-02" in body  # the English fallback underneath


async def test_a_digest_sends_one_email_for_the_day_instead_of_single_ones(notify: Notify) -> None:
    async with httpx.AsyncClient(base_url=notify.url) as client:
        saved = await client.put(
            "/v1/preferences",
            headers=notify.cadre(4),
            json={
                "email": "c004@example.org",
                "digest": True,
                "digest_at": "00:00",
                "language": "en",
            },
        )
        assert saved.status_code == 200, saved.text
    await notify.publish(
        [
            notify.event("journal.journal_missed", "c004", {"day": "2026-11-02"}, actor="journal"),
            light(notify, "c004", "green", "yellow"),
        ]
    )
    await notify.inbox_has(notify.cadre(4), "light_changed")
    held = (
        sa.select(sa.func.count())
        .select_from(deliveries)
        .where(deliveries.c.recipient_id == "c004", deliveries.c.status == "held")
    )
    await eventually(lambda: _equals(notify.scalar(held), 2), message="two held emails")
    assert notify.mailbox.to("c004@example.org") == []
    config = routing_config(NotifySettings(smtp_host="127.0.0.1"))
    now = datetime.now(UTC)
    assert await send_digests(notify.sessions, now, config) == 1
    assert await send_digests(notify.sessions, now, config) == 0  # once a day

    async def mailed() -> bool:
        return len(notify.mailbox.to("c004@example.org")) == 1

    await eventually(mailed, message="the digest email")
    [digest] = notify.mailbox.to("c004@example.org")
    assert digest["Subject"] == "Your daily digest (2)"
    assert "Your warning light is now yellow" in digest.get_content()


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


# ------------------------------------------------------------------ webhooks


async def subscribe(notify: Notify, name: str, types: list[str]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=notify.url) as client:
        response = await client.post(
            "/v1/webhooks",
            headers=notify.admin(),
            json={
                "url": f"http://127.0.0.1:{notify.receiver.port}/hooks/{name}",
                "event_types": types,
            },
        )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert created["secret"].startswith("whsec_")
    return created


async def delivery_log(notify: Notify, subscription: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=notify.url) as client:
        page = await client.get(
            "/v1/deliveries", headers=notify.admin(), params={"subscription_id": subscription}
        )
        assert page.status_code == 200, page.text
        found = []
        for item in page.json()["items"]:
            one = await client.get(f"/v1/deliveries/{item['id']}", headers=notify.admin())
            found.append(one.json())
    return found


async def test_a_webhook_is_signed_and_retried_until_the_receiver_accepts_it_once(
    notify: Notify,
) -> None:
    ok = await subscribe(notify, "ok", ["scoring.light_changed"])
    notify.receiver.fail_first["flaky"] = 3
    flaky = await subscribe(notify, "flaky", ["journal.*"])
    event = light(notify, "c006", "green", "red")
    missed = notify.event("journal.journal_missed", "c006", {"day": "2026-11-03"}, actor="journal")
    await notify.publish([event, missed])

    async def arrived() -> bool:
        return len(notify.receiver.to("ok")) == 1 and len(notify.receiver.to("flaky")) == 4

    await eventually(arrived, message="the webhooks")
    [(headers, body, status)] = notify.receiver.to("ok")
    assert status == 200
    assert verify(ok["secret"], headers[SIGNATURE_HEADER], body, now=int(time.time()))
    assert not verify(flaky["secret"], headers[SIGNATURE_HEADER], body, now=int(time.time()))
    assert json.loads(body)["id"] == str(event.id)
    assert headers["Cadre-Event-Type"] == "scoring.light_changed"

    attempts = notify.receiver.to("flaky")
    assert [s for _, _, s in attempts] == [500, 500, 500, 200]
    assert len({h[DELIVERY_HEADER] for h, _, _ in attempts}) == 1  # one delivery, four tries
    assert all(
        verify(flaky["secret"], h[SIGNATURE_HEADER], b, now=int(time.time()))
        for h, b, _ in attempts
    )

    async def settled() -> bool:
        log = await delivery_log(notify, flaky["id"])
        return len(log) == 1 and log[0]["status"] == "delivered"

    await eventually(settled, message="the delivery to be recorded")
    [record] = await delivery_log(notify, flaky["id"])
    assert record["attempts"] == 4
    assert [(a["ok"], a["status_code"]) for a in record["attempt_log"]] == [
        (False, 500),
        (False, 500),
        (False, 500),
        (True, 200),
    ]
    assert sum(a["ok"] for a in record["attempt_log"]) == 1

    # A manual redeliver sends it once more, and is logged as a fifth attempt.
    async with httpx.AsyncClient(base_url=notify.url) as client:
        again = await client.post(
            f"/v1/deliveries/{record['id']}/redeliver", headers=notify.admin()
        )
        assert again.status_code == 202, again.text
    await eventually(
        lambda: _equals(_len_async(notify.receiver.to("flaky")), 5), message="the redelivery"
    )


async def _len_async(items: list[Any]) -> int:
    return len(items)


async def test_a_webhook_that_keeps_failing_is_dead_lettered_after_the_last_attempt(
    notify: Notify,
) -> None:
    down = await subscribe(notify, "down", ["attendance.leave_rejected"])
    await notify.publish(
        [
            notify.event(
                "attendance.leave_rejected",
                "c007",
                {
                    "leave_id": "L-x",
                    "step": 0,
                    "level": "township",
                    "approver_id": "lead-west",
                    "reason": "材料不全",
                },
                actor="lead-west",
            )
        ]
    )

    async def dead() -> bool:
        log = await delivery_log(notify, down["id"])
        return len(log) == 1 and log[0]["status"] == "dead"

    await eventually(dead, message="the dead-lettered delivery")
    [record] = await delivery_log(notify, down["id"])
    assert record["attempts"] == 4  # CADRE_NOTIFY_RETRY_MAX_ATTEMPTS
    assert len(notify.receiver.to("down")) == 4
    [rejected] = await notify.inbox_has(notify.cadre(7), "leave_rejected")
    assert "材料不全" in rejected["body"]


# ------------------------------------------------------------------ routing through the org tree


async def test_a_leave_goes_to_each_next_approver_and_the_decision_to_the_requester(
    notify: Notify,
) -> None:
    leave = {
        "leave_id": "L-1",
        "kind": "annual",
        "starts_on": "2026-11-09",
        "ends_on": "2026-11-10",
        "workdays": 2,
        "chain": [{"level": "township"}, {"level": "county"}],
    }
    step = {"leave_id": "L-1", "step": 0, "level": "township", "approver_id": "lead-west"}
    approved = {k: leave[k] for k in ("leave_id", "kind", "starts_on", "ends_on", "workdays")}
    await notify.publish(
        [
            notify.event("attendance.leave_requested", "c001", leave),
            notify.event("attendance.leave_step_approved", "c001", step, actor="lead-west"),
            notify.event("attendance.leave_approved", "c001", approved, actor="lead-county"),
        ]
    )
    west = notify.who(
        "lead-west", f"/{notify.tenant}/west", Role.LEADER, level=LeaderLevel.TOWNSHIP
    )
    county = notify.who("lead-county", f"/{notify.tenant}", Role.LEADER, level=LeaderLevel.COUNTY)
    east = notify.who(
        "lead-east", f"/{notify.tenant}/east", Role.LEADER, level=LeaderLevel.TOWNSHIP
    )
    [first] = await notify.inbox_has(west, "leave_awaiting")
    assert first["title"] == "待审批：cadre 1的请假"
    assert "第1步" in first["body"]
    [second] = await notify.inbox_has(county, "leave_awaiting")
    assert "第2步" in second["body"]
    await notify.inbox_has(notify.cadre(1), "leave_approved")
    assert [n for n in await notify.inbox(east) if n["kind"] == "leave_awaiting"] == []


# ------------------------------------------------------------------ reminders (a set clock)


def local(day: str, hour: int) -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), SHANGHAI).replace(
        hour=hour
    )


async def test_reminders_follow_the_calendar_across_a_holiday_and_an_adjusted_working_weekend(
    notify: Notify,
) -> None:
    old = datetime(2026, 10, 9, 8, tzinfo=SHANGHAI)  # recorded long ago: muted on arrival
    leave = {
        "leave_id": "L-old",
        "kind": "personal",
        "starts_on": "2026-10-20",
        "ends_on": "2026-10-20",
        "workdays": 1,
        "chain": [{"level": "township"}],
    }
    task = {
        "task_id": "T-due",
        "title": "报送材料",
        "due_at": "2026-10-12T10:00:00+08:00",
        "reward_points": 2,
        "penalty_points": 2,
        "dimension": "responsibility",
        "assigner_id": "lead-east",
    }
    leave_on_10th = {
        "leave_id": "L-10",
        "kind": "sick",
        "starts_on": "2026-10-10",
        "ends_on": "2026-10-10",
        "workdays": 1,
    }
    entry = {"entry_id": "E-10", "day": "2026-10-10", "text": "调休上班，整理台账。"}
    await notify.publish(
        [
            notify.event("attendance.leave_requested", "c003", leave, recorded_at=old),
            notify.event("journal.task_assigned", "c005", task, actor="lead-east", recorded_at=old),
            notify.event("attendance.leave_approved", "c007", leave_on_10th, recorded_at=old),
            notify.event("journal.entry_posted", "c002", entry, recorded_at=old),
        ]
    )
    tasks_remembered = (
        sa.select(sa.func.count())
        .select_from(sa.table("tasks", sa.column("tenant")))
        .where(sa.column("tenant") == notify.tenant)
    )
    await eventually(lambda: _equals(notify.scalar(tasks_remembered), 1), message="the task")
    await eventually(
        lambda: _equals(
            notify.scalar(
                sa.select(sa.func.count())
                .select_from(sa.table("journal_days", sa.column("tenant")))
                .where(sa.column("tenant") == notify.tenant)
            ),
            1,
        ),
        message="the journal day",
    )
    west = notify.who(
        "lead-west", f"/{notify.tenant}/west", Role.LEADER, level=LeaderLevel.TOWNSHIP
    )
    awaiting = await notify.inbox(west, kind="leave_awaiting")
    assert [n for n in awaiting if n["params"]["leave_id"] == "L-old"] == []  # old news: muted

    config = routing_config(NotifySettings())
    rules = NotifySettings().reminder_rules()

    async def reminders(kind: str) -> Counter[str]:
        async with notify.sessions() as session:
            rows = await session.execute(
                sa.select(notifications.c.recipient_id, notifications.c.source).where(
                    notifications.c.tenant == notify.tenant, notifications.c.kind == kind
                )
            )
        return Counter(f"{r.recipient_id}@{r.source}" for r in rows)

    # National Day, 20:00: a holiday, nobody is reminded to write.
    await remind(notify.sessions, local("2026-10-01", 20), config, rules)
    assert await reminders("remind_journal") == Counter()
    # The adjusted working Saturday, 19:00: not yet; 20:00: everyone without an entry or leave.
    await remind(notify.sessions, local("2026-10-10", 19), config, rules)
    assert await reminders("remind_journal") == Counter()
    for _ in range(2):  # ticking twice reminds once
        await remind(notify.sessions, local("2026-10-10", 20), config, rules)
    journal = await reminders("remind_journal")
    cadres = {f"c00{n}" for n in range(8)} | {"lead-east", "lead-west", "lead-county", "orgadmin"}
    assert set(k.split("@")[0] for k in journal) == cadres - {"c002", "c007"}
    assert set(journal.values()) == {1}
    # The leave waited 36 h by then: its approver is reminded once.
    assert await reminders("remind_approval") == Counter({"lead-west@remind-approval:L-old:0:1": 1})
    # The task due Monday 10:00 is reminded on the working Saturday before, once.
    assert await reminders("remind_task_due") == Counter(
        {"c005@remind-task:T-due:2026-10-12T02:00:00+00:00": 1}
    )
    [task_note] = await notify.inbox(notify.cadre(5), kind="remind_task_due")
    assert task_note["title"] == "提醒：任务「报送材料」明天到期"
    assert "2026-10-12 10:00" in task_note["body"]  # shown in the tenant's time zone


# ------------------------------------------------------------------ bad input


async def test_bad_requests_get_clear_problems(notify: Notify) -> None:
    async with httpx.AsyncClient(base_url=notify.url) as client:
        cases = [
            await client.put("/v1/preferences", headers=notify.cadre(1), json={"email": "nope"}),
            await client.put(
                "/v1/preferences",
                headers=notify.cadre(1),
                json={"quiet_hours": {"start": "22:00", "end": "22:00"}},
            ),
            await client.post(
                "/v1/webhooks",
                headers=notify.admin(),
                json={"url": "http://127.0.0.1:1/x", "event_types": ["scoring.nonsense"]},
            ),
            await client.post(
                "/v1/webhooks",
                headers=notify.admin(),
                json={"url": "ftp://example.org/x", "event_types": ["*"]},
            ),
            await client.get("/v1/stream", headers={**notify.cadre(1), "Last-Event-ID": "abc"}),
            await client.get("/v1/inbox", headers=notify.cadre(1), params={"cursor": "x"}),
            # Digits that str.isdigit() accepts but int() or a bigint does not.
            await client.get("/v1/inbox", headers=notify.cadre(1), params={"cursor": "\u00b9"}),
            await client.get("/v1/inbox", headers=notify.cadre(1), params={"cursor": "9" * 30}),
            await client.get(
                "/v1/stream", headers=notify.cadre(1), params={"last_event_id": "\u00b2"}
            ),
            await client.get(
                "/v1/deliveries", headers=notify.admin(), params={"cursor": "not-a-cursor"}
            ),
        ]
        for response in cases:
            assert response.status_code == 422, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
        assert (await client.get("/v1/inbox")).status_code == 401
        assert (await client.get("/v1/webhooks", headers=notify.cadre(1))).status_code == 403
        missing = await client.post(
            f"/v1/deliveries/{uuid.uuid4()}/redeliver", headers=notify.admin()
        )
        assert missing.status_code == 404


# ------------------------------------------------------------------ crash in a burst


@pytest.mark.slow
async def test_after_a_sigkill_during_a_burst_every_notification_exists_and_is_sent_once(
    notify: Notify,
) -> None:
    mint = notify.burst_mint
    burst_tenant = mint.tenant
    recipients = [f"b{n:02d}" for n in range(10)]
    async with httpx.AsyncClient(base_url=notify.url) as client:
        for cadre in recipients:
            headers = mint.headers(cadre, f"/{burst_tenant}")
            saved = await client.put(
                "/v1/preferences",
                headers=headers,
                json={"email": f"{cadre}@{burst_tenant}.example.org"},
            )
            assert saved.status_code == 200, saved.text
        hook = await client.post(
            "/v1/webhooks",
            headers=mint.headers("admin", f"/{burst_tenant}", Role.ORG_ADMIN),
            json={
                "url": f"http://127.0.0.1:{notify.receiver.port}/hooks/burst",
                "event_types": ["journal.entry_reacted"],
            },
        )
        assert hook.status_code == 201, hook.text
    burst = [
        notify.event(
            "journal.entry_reacted",
            recipients[n % 10],
            {
                "entry_id": f"E{n}",
                "reaction": "like",
                "reason": f"第{n}条",
                "reactor_level": "township",
            },
            actor="lead",
            tenant=burst_tenant,
            unit_path=f"/{burst_tenant}",
        )
        for n in range(1000)
    ]
    mine = (
        sa.select(sa.func.count())
        .select_from(notifications)
        .where(notifications.c.tenant == burst_tenant)
    )
    await notify.publish(burst)
    await eventually(
        lambda: _at_least(notify.scalar(mine), 200), interval_s=0.02, message="the burst under way"
    )
    assert notify.process is not None
    kill_process(notify.process)
    killed_at = await notify.scalar(mine)
    notify.start()
    await notify.ready()
    await eventually(lambda: _equals(notify.scalar(mine), 1000), timeout_s=120, message="all 1,000")

    unsettled = (
        sa.select(sa.func.count())
        .select_from(deliveries)
        .where(deliveries.c.tenant == burst_tenant, deliveries.c.status.in_(("pending", "sending")))
    )
    await eventually(
        lambda: _equals(notify.scalar(unsettled), 0),
        timeout_s=120,
        message="every delivery settled",
    )
    async with notify.sessions() as session:
        rows = (
            await session.execute(
                sa.select(notifications.c.source, notifications.c.recipient_id).where(
                    notifications.c.tenant == burst_tenant
                )
            )
        ).all()
        statuses: dict[str, int] = dict(
            (
                await session.execute(
                    sa.select(deliveries.c.channel + ":" + deliveries.c.status, sa.func.count())
                    .where(deliveries.c.tenant == burst_tenant)
                    .group_by(deliveries.c.channel, deliveries.c.status)
                )
            ).all()
        )
    assert len(rows) == 1000
    assert len({r.source for r in rows}) == 1000
    assert killed_at < 1000, "the kill came after the burst was done: the test proved nothing"
    # Each channel: every delivery happened once, or is marked uncertain (cut off mid-send),
    # and nothing reached the other side twice.
    assert statuses.get("email:delivered", 0) + statuses.get("email:uncertain", 0) == 1000
    assert statuses.get("webhook:delivered", 0) + statuses.get("webhook:uncertain", 0) == 1000
    mails = [m for m in notify.mailbox.messages if m["To"].endswith(f"@{burst_tenant}.example.org")]
    per_delivery = Counter(m["X-Cadre-Delivery"] for m in mails)
    assert per_delivery
    assert max(per_delivery.values()) == 1
    assert len(mails) >= statuses.get("email:delivered", 0)
    hooks = Counter(h[DELIVERY_HEADER] for h, _, _ in notify.receiver.to("burst"))
    assert max(hooks.values()) == 1
    assert len(hooks) >= statuses.get("webhook:delivered", 0)


async def _at_least(value: Any, expected: int) -> bool:
    return bool(await value >= expected)
