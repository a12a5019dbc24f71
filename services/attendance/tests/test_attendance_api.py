"""Attendance over HTTP with the real directory, PostgreSQL and Kafka: the directory's events
feed attendance's replica; check-ins and leaves publish attendance.* events."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa

from cadre.attendance.adapters.tables import (
    day_closes,
    fences,
    people,
    unit_paths,
    workday_overrides,
)
from cadre.attendance.entrypoints.app import create_app as create_attendance
from cadre.attendance.entrypoints.checkins import device_stream
from cadre.attendance.entrypoints.day_close_job import DayClose
from cadre.attendance.settings import AttendanceSettings
from cadre.devstack.infra import Infra, create_databases, drop_database
from cadre.devstack.testing import eventually, read_topic
from cadre.directory.entrypoints.app import create_app as create_directory
from cadre.directory.entrypoints.demo import GEOFENCES, UNITS, demo_people, load_demo
from cadre.directory.settings import DirectorySettings
from cadre.events.auth import JwksVerifier
from cadre.events.catalogue import AnyEvent
from cadre.events.consumer import InboundRecord
from cadre.events.db import create_engine, migrate_async, session_factory
from cadre.events.tables import event_store
from cadre.events.wire import decode, header_map

pytestmark = [pytest.mark.integration]

# A tenant of this module's own: the shared topic also carries other tests' `demo` events
# (fuzzed geofences and calendars among them), which the replica would otherwise apply.
TENANT = f"att{uuid.uuid4().hex[:8]}"
LEYE_V1_OFFICE = (25.2402, 106.1655)  # the demo geofence of 坡头村, radius 250 m


class Stack:
    def __init__(
        self, directory: httpx.AsyncClient, attendance: httpx.AsyncClient, attendance_app: Any
    ) -> None:
        self.directory = directory
        self.attendance = attendance
        self.attendance_app = attendance_app

    async def login(self, username: str) -> dict[str, str]:
        response = await self.directory.post(
            "/v1/auth/token", json={"username": username, "password": "demo"}
        )
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest_asyncio.fixture(scope="module")
async def stack(infra: Infra, kafka_bootstrap: str) -> AsyncIterator[Stack]:
    admin = infra.pg_url("postgres", "postgresql")
    names = [f"directory_{uuid.uuid4().hex[:8]}", f"attendance_{uuid.uuid4().hex[:8]}"]
    await create_databases(admin, names)
    directory_url, attendance_url = (infra.pg_url(n) for n in names)
    await migrate_async("cadre.directory.adapters.migrations", directory_url)
    await migrate_async("cadre.attendance.adapters.migrations", attendance_url)
    directory_app = create_directory(
        DirectorySettings(
            database_url=directory_url, kafka_bootstrap=kafka_bootstrap, relay_poll_interval_s=0.2
        )
    )
    attendance_app = create_attendance(
        AttendanceSettings(
            database_url=attendance_url,
            kafka_bootstrap=kafka_bootstrap,
            relay_poll_interval_s=0.2,
            replica_group=f"replica-{uuid.uuid4().hex[:8]}",
            day_close_interval_s=3600,
        )
    )
    async with (
        directory_app.router.lifespan_context(directory_app),
        attendance_app.router.lifespan_context(attendance_app),
    ):
        await load_demo(directory_app.state.runtime, TENANT)
        directory = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=directory_app), base_url="http://directory"
        )
        attendance = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=attendance_app), base_url="http://attendance"
        )

        async def jwks(_: str) -> dict[str, Any]:
            result: dict[str, Any] = (await directory.get("/.well-known/jwks.json")).json()
            return result

        attendance_app.state.verifier = JwksVerifier("directory", fetch=jwks, min_refresh_s=0)
        await directory.post(
            "/v1/auth/token", json={"username": "orgadmin", "password": "demo"}
        )  # makes the key

        wanted = {p["cadre_id"] for p in demo_people()}

        async def replica_ready() -> bool:
            """Every demo person, unit and fence has arrived (the shared topic also carries
            other tests' people, so counting rows is not enough)."""
            async with attendance_app.state.sessions() as session:
                have = set(
                    (
                        await session.execute(
                            sa.select(people.c.cadre_id).where(people.c.tenant == TENANT)
                        )
                    ).scalars()
                )
                units = set(
                    (
                        await session.execute(
                            sa.select(unit_paths.c.unit_id).where(unit_paths.c.tenant == TENANT)
                        )
                    ).scalars()
                )
                fenced = set(
                    (
                        await session.execute(
                            sa.select(fences.c.unit_id).where(fences.c.tenant == TENANT)
                        )
                    ).scalars()
                )
            return (
                wanted <= have
                and {u[0] for u in UNITS} <= units
                and {g[0] for g in GEOFENCES} <= fenced
            )

        await eventually(replica_ready, timeout_s=60, message="attendance's directory replica")
        yield Stack(directory, attendance, attendance_app)
        await directory.aclose()
        await attendance.aclose()
    for name in names:
        await drop_database(admin, name)


def body(device: str = "phone-1", **changes: Any) -> dict[str, Any]:
    lat, lon = LEYE_V1_OFFICE
    payload = {
        "device_id": device,
        "mode": "normal",
        "lat": lat,
        "lon": lon,
        "accuracy_m": 12.0,
        "occurred_at": datetime.now(UTC).isoformat(),
        "note": "到岗",
    }
    return {**payload, **changes}


async def attendance_events(
    kafka_bootstrap: str, subject: str, types: set[str], at_least: int, since: datetime
) -> list[AnyEvent]:
    """This run's events about `subject` in the module's tenant (the shared topic keeps
    earlier runs' too)."""

    def ours(records: list[InboundRecord]) -> list[InboundRecord]:
        found = []
        for record in records:
            headers = header_map(record.headers)
            if (
                headers.get("ce_subject") == subject
                and headers.get("ce_tenant") == TENANT
                and headers.get("ce_type") in types
                and datetime.fromisoformat(headers["ce_recordedat"]) >= since
            ):
                found.append(record)
        return found

    records = await read_topic(
        kafka_bootstrap, "attendance.events.v1", until=lambda rs: len(ours(rs)) >= at_least
    )
    return [decode(r.headers, r.value) for r in ours(records)]


async def test_first_check_in_binds_the_device_and_another_device_is_refused_and_flagged(
    stack: Stack, kafka_bootstrap: str
) -> None:
    started = datetime.now(UTC)
    headers = await stack.login("cadre1")
    first = await stack.attendance.post("/v1/check-ins", json=body("phone-1"), headers=headers)
    assert first.status_code == 201, first.text
    assert first.json()["within_geofence"] is True
    assert first.json()["flags"] == []

    other = await stack.attendance.post("/v1/check-ins", json=body("phone-2"), headers=headers)
    assert other.status_code == 403
    assert other.json()["code"] == "device-mismatch"

    events = await attendance_events(
        kafka_bootstrap,
        "cadre1",
        {"attendance.device_bound", "attendance.checked_in", "attendance.check_in_flagged"},
        3,
        since=started,
    )
    by_type = {e.type: e for e in events}
    flagged = by_type["attendance.check_in_flagged"]
    assert flagged.data.model_dump()["reasons"] == ("device_mismatch",)
    checked = by_type["attendance.checked_in"]
    assert checked.tenant == TENANT
    assert checked.unit_path == "/demo/wangmo/leye/leye-v1"
    assert checked.actor == "cadre1"

    again = await stack.attendance.post(
        "/v1/check-ins", json=body("phone-1", note="mismatch history"), headers=headers
    )
    assert again.status_code == 201
    assert "mismatch_history" in again.json()["flags"]


async def test_racing_first_check_ins_bind_the_phone_once_and_the_losers_get_409_not_500(
    stack: Stack,
) -> None:
    headers = await stack.login("cadre4")
    answers = await asyncio.gather(
        *(
            stack.attendance.post("/v1/check-ins", json=body("phone-4"), headers=headers)
            for _ in range(8)
        )
    )
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {201, 409}, [a.text for a in answers]
    assert 201 in statuses
    assert all(
        a.json()["code"] == "concurrent-modification" for a in answers if a.status_code == 409
    )
    async with stack.attendance_app.state.sessions() as session:
        bound = await session.scalar(
            sa.select(sa.func.count())
            .select_from(event_store)
            .where(
                event_store.c.stream_id == device_stream(TENANT, "cadre4"),
                event_store.c.event_type == "attendance.device_bound",
            )
        )
    assert bound == 1
    # A retry of a loser, as the phone would send, goes through on the bound device.
    retried = await stack.attendance.post("/v1/check-ins", json=body("phone-4"), headers=headers)
    assert retried.status_code == 201


async def test_outside_the_fence_late_sync_and_spoof_flags_are_recorded_not_dropped(
    stack: Stack,
) -> None:
    headers = await stack.login("cadre2")  # leye-v2
    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    late = await stack.attendance.post(
        "/v1/check-ins",
        headers=headers,
        json=body("p-c2", occurred_at=two_hours_ago, lat=25.0, lon=106.0, accuracy_m=900),
    )
    assert late.status_code == 201, late.text
    result = late.json()
    assert result["late_sync"] is True
    assert result["within_geofence"] is False
    assert set(result["flags"]) == {"outside_geofence", "poor_accuracy"}
    # 2 hours later, 30 km away... then 1 minute later back at the office: impossible speed.
    jump = await stack.attendance.post(
        "/v1/check-ins",
        headers=headers,
        json=body(
            "p-c2",
            occurred_at=(datetime.now(UTC) - timedelta(hours=2) + timedelta(minutes=1)).isoformat(),
            lat=25.2150,
            lon=106.1301,
        ),
    )
    assert "impossible_speed" in jump.json()["flags"]
    mine = (await stack.attendance.get("/v1/check-ins", headers=headers)).json()["items"]
    assert [c["check_in_id"] for c in mine] == [jump.json()["check_in_id"], result["check_in_id"]]


async def test_the_same_spot_twice_in_one_local_day_is_not_a_repeat_across_utc_dates(
    stack: Stack,
) -> None:
    """Check-ins store their day in the tenant's zone (Asia/Shanghai): two at the very same
    coordinates at 00:30 and 01:00 there, which are 16:30 and 17:00 UTC the day before, are
    one day's, and the second is not flagged as repeated from another day."""
    headers = await stack.login("cadre8")
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    first_at = datetime(yesterday.year, yesterday.month, yesterday.day, 16, 30, tzinfo=UTC)
    spot = {"lat": 25.123456, "lon": 106.654321}
    first = await stack.attendance.post(
        "/v1/check-ins",
        headers=headers,
        json=body("p-c8", occurred_at=first_at.isoformat(), **spot),
    )
    assert first.status_code == 201, first.text
    again = await stack.attendance.post(
        "/v1/check-ins",
        headers=headers,
        json=body("p-c8", occurred_at=(first_at + timedelta(minutes=30)).isoformat(), **spot),
    )
    assert again.status_code == 201, again.text
    assert "repeated_coordinates" not in again.json()["flags"]


async def test_bad_input_gets_a_4xx_problem_and_writes_nothing(stack: Stack) -> None:
    headers = await stack.login("cadre3")
    cases = {
        "future": body("p3", occurred_at=(datetime.now(UTC) + timedelta(minutes=10)).isoformat()),
        "too old": body("p3", occurred_at=(datetime.now(UTC) - timedelta(days=5)).isoformat()),
        "latitude": body("p3", lat=95),
        "mode": body("p3", mode="teleport"),
        "note": body("p3", note="长" * 501),
        "destination": body("p3", mode="business_trip"),
        "leave without leave": body("p3", mode="leave"),
    }
    for name, payload in cases.items():
        response = await stack.attendance.post("/v1/check-ins", json=payload, headers=headers)
        assert response.status_code == 422, name
        assert response.headers["content-type"] == "application/problem+json", name
    assert (await stack.attendance.get("/v1/check-ins", headers=headers)).json()["items"] == []
    unauthenticated = await stack.attendance.post("/v1/check-ins", json=body())
    assert unauthenticated.status_code == 401


async def pin_workdays(stack: Stack, days: list[date]) -> None:
    """Make `days` workdays for the module's tenant through the directory, and wait for attendance's
    replica: other tests on the shared topic may have given such days off."""
    admin = await stack.login("orgadmin")
    for day in days:
        response = await stack.directory.put(
            f"/v1/calendar/{day.isoformat()}", headers=admin, json={"workday": True, "note": "test"}
        )
        assert response.status_code == 204

    async def replicated() -> bool:
        async with stack.attendance_app.state.sessions() as session:
            rows = await session.execute(
                sa.select(workday_overrides.c.day).where(
                    workday_overrides.c.tenant == TENANT,
                    workday_overrides.c.workday.is_(True),
                    workday_overrides.c.day.in_(days),
                )
            )
            return set(rows.scalars()) == set(days)

    await eventually(
        replicated, timeout_s=30, message="the workday overrides in attendance's replica"
    )


def next_full_week() -> tuple[date, date]:
    day = date.today() + timedelta(days=14)
    while day.weekday() != 0:
        day += timedelta(days=1)
    return day, day + timedelta(days=4)


async def test_a_three_level_leave_is_approved_step_by_step_and_a_wrong_level_gets_403(
    stack: Stack, kafka_bootstrap: str
) -> None:
    started = datetime.now(UTC)
    requester = await stack.login("cadre5")  # leye, below every demo leader
    monday, friday = next_full_week()
    await pin_workdays(stack, [monday + timedelta(days=n) for n in range(5)])
    created = await stack.attendance.post(
        "/v1/leaves",
        headers=requester,
        json={
            "kind": "annual",
            "starts_on": monday.isoformat(),
            "ends_on": friday.isoformat(),
            "reason": "探亲",
        },
    )
    assert created.status_code == 201, created.text
    leave = created.json()
    assert leave["chain"] == ["township", "county", "city"]
    assert leave["workdays"] == 5

    overlapping = await stack.attendance.post(
        "/v1/leaves",
        headers=requester,
        json={"kind": "sick", "starts_on": friday.isoformat(), "ends_on": friday.isoformat()},
    )
    assert overlapping.status_code == 409

    path = f"/v1/leaves/{leave['leave_id']}"
    county = await stack.login("county.leader")
    wrong_level = await stack.attendance.post(path + "/approve", json={}, headers=county)
    assert wrong_level.status_code == 403
    assert wrong_level.json()["code"] == "wrong-level"
    self_approval = await stack.attendance.post(path + "/approve", json={}, headers=requester)
    assert self_approval.status_code == 403

    township = await stack.login("township.leader")
    pending = (await stack.attendance.get("/v1/approvals/pending", headers=township)).json()[
        "items"
    ]
    assert leave["leave_id"] in {p["leave_id"] for p in pending}

    async def waiting_for(headers: dict[str, str]) -> set[str]:
        answer = await stack.attendance.get("/v1/approvals/pending", headers=headers)
        assert answer.status_code == 200, answer.text
        return {p["leave_id"] for p in answer.json()["items"]}

    assert leave["leave_id"] not in await waiting_for(county), "not at the county's step yet"
    for approver in (township, county, await stack.login("city.leader")):
        assert leave["leave_id"] in await waiting_for(approver)
        step = await stack.attendance.post(
            path + "/approve", json={"comment": "同意"}, headers=approver
        )
        assert step.status_code == 200, step.text
        assert leave["leave_id"] not in await waiting_for(approver)
    final = (await stack.attendance.get(path, headers=requester)).json()
    assert final["status"] == "approved"
    assert [d["level"] for d in final["decisions"]] == ["township", "county", "city"]

    events = await attendance_events(
        kafka_bootstrap,
        "cadre5",
        {
            "attendance.leave_requested",
            "attendance.leave_step_approved",
            "attendance.leave_approved",
        },
        5,
        since=started,
    )
    assert [e.type for e in events] == ["attendance.leave_requested"] + [
        "attendance.leave_step_approved"
    ] * 3 + ["attendance.leave_approved"]

    cancelled = await stack.attendance.post(
        path + "/cancel", json={"reason": "改期"}, headers=requester
    )
    assert cancelled.json()["status"] == "cancelled"

    # The cancelled week is free again: ask for its Friday, so there are two leaves to page.
    again = await stack.attendance.post(
        "/v1/leaves",
        headers=requester,
        json={"kind": "sick", "starts_on": friday.isoformat(), "ends_on": friday.isoformat()},
    )
    assert again.status_code == 201, again.text

    # My leaves, a page of one at a time: every leave of mine once, nobody else's.
    mine: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = await stack.attendance.get("/v1/leaves", params=params, headers=requester)
        assert page.status_code == 200, page.text
        mine += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    ids = [item["leave_id"] for item in mine]
    assert ids == sorted(set(ids))
    assert {leave["leave_id"], again.json()["leave_id"]} <= set(ids)
    assert {item["cadre_id"] for item in mine} == {leave["cadre_id"]}


async def test_a_rejection_needs_a_reason(stack: Stack) -> None:
    requester = await stack.login("cadre13")  # leye
    monday, _ = next_full_week()
    day = monday + timedelta(days=22)
    await pin_workdays(stack, [day])
    leave = (
        await stack.attendance.post(
            "/v1/leaves",
            headers=requester,
            json={
                "kind": "personal",
                "starts_on": day.isoformat(),
                "ends_on": day.isoformat(),
                "start_half": "pm",
            },
        )
    ).json()
    assert leave.get("workdays") == 0.5, leave
    township = await stack.login("township.leader")
    path = f"/v1/leaves/{leave['leave_id']}/reject"
    assert (await stack.attendance.post(path, json={}, headers=township)).status_code == 422
    rejected = await stack.attendance.post(path, json={"reason": "工作冲突"}, headers=township)
    assert rejected.json()["status"] == "rejected"


async def test_day_close_emits_once_even_when_run_again_after_a_restart(
    stack: Stack, kafka_bootstrap: str
) -> None:
    started = datetime.now(UTC)
    sessions = stack.attendance_app.state.sessions
    yesterday = date.today() - timedelta(days=1)
    async with sessions() as session, session.begin():  # as if registered last week
        await session.execute(
            sa.update(people)
            .where(people.c.tenant == TENANT)
            .values(registered_on=yesterday - timedelta(days=7))
        )
    first = await DayClose(sessions, catch_up_days=3).close_through(yesterday)
    assert first > 0
    assert await DayClose(sessions, catch_up_days=3).close_through(yesterday) == 0
    # A restarted service: a new app on the same database, with its own engine and start-up.
    restarted = create_attendance(stack.attendance_app.state.runtime.settings)
    async with restarted.router.lifespan_context(restarted):
        again = DayClose(restarted.state.sessions, catch_up_days=3)
        assert await again.close_through(yesterday) == 0
    events = await attendance_events(
        kafka_bootstrap, "cadre20", {"attendance.day_closed"}, 1, since=started
    )
    per_day: dict[object, int] = {}
    for event in events:
        per_day[event.data.model_dump()["day"]] = per_day.get(event.data.model_dump()["day"], 0) + 1
    assert per_day
    assert set(per_day.values()) == {1}


async def test_a_pass_that_finds_nothing_new_reads_only_the_people_yet_closes_a_newcomer(
    stack: Stack,
) -> None:
    runtime = stack.attendance_app.state.runtime
    engine = create_engine(runtime.settings.effective_database_url)  # its statements alone
    yesterday = date.today() - timedelta(days=1)
    async with runtime.sessions() as session, session.begin():  # with days to close
        await session.execute(
            sa.update(people)
            .where(people.c.tenant == TENANT)
            .values(registered_on=yesterday - timedelta(days=7))
        )
    day_close = DayClose(session_factory(engine), catch_up_days=3)
    await day_close.close_through(yesterday)  # whatever was still open

    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        assert await day_close.close_through(yesterday) == 0
        read_when_settled = list(statements)
        async with runtime.sessions() as session, session.begin():  # registered two days ago
            await session.execute(
                sa.insert(people).values(
                    tenant=TENANT,
                    cadre_id="newcomer",
                    unit_id="leye",
                    stationed=False,
                    active=True,
                    registered_on=yesterday - timedelta(days=1),
                )
            )
        statements.clear()
        assert await day_close.close_through(yesterday) == 2
    finally:
        await engine.dispose()
    # The tenants, then each tenant's people (the replica holds other tests' tenants too).
    assert read_when_settled
    assert all(statement.startswith("SELECT") for statement in read_when_settled)
    assert all("FROM people" in statement for statement in read_when_settled)
    assert any("day_closes" in statement for statement in statements)
    async with runtime.sessions() as session, session.begin():
        closed = await session.execute(
            sa.select(day_closes.c.day).where(day_closes.c.cadre_id == "newcomer")
        )
        assert sorted(closed.scalars()) == [yesterday - timedelta(days=1), yesterday]
        # Gone again, so that the unit's reports in other tests stay as the demo has them.
        await session.execute(sa.delete(day_closes).where(day_closes.c.cadre_id == "newcomer"))
        await session.execute(sa.delete(people).where(people.c.cadre_id == "newcomer"))


async def test_rebinding_needs_an_admin_then_the_next_phone_binds(stack: Stack) -> None:
    cadre = await stack.login("cadre7")
    assert (
        await stack.attendance.post("/v1/check-ins", json=body("old-phone"), headers=cadre)
    ).status_code == 201
    assert (
        await stack.attendance.post("/v1/check-ins", json=body("new-phone"), headers=cadre)
    ).status_code == 403
    leader = await stack.login("county.leader")
    refused = await stack.attendance.post(
        "/v1/cadres/cadre7/device/unbind", json={"reason": "换手机"}, headers=leader
    )
    assert refused.status_code == 403
    admin = await stack.login("orgadmin")
    approved = await stack.attendance.post(
        "/v1/cadres/cadre7/device/unbind", json={"reason": "换手机"}, headers=admin
    )
    assert approved.status_code == 204
    assert (
        await stack.attendance.post("/v1/check-ins", json=body("new-phone"), headers=cadre)
    ).status_code == 201
    assert (
        await stack.attendance.post("/v1/check-ins", json=body("old-phone"), headers=cadre)
    ).status_code == 403


async def test_a_units_day_and_the_stationing_report(stack: Stack) -> None:
    cadre9 = await stack.login("cadre9")  # leye-v1, stationed
    assert (
        await stack.attendance.post("/v1/check-ins", json=body("p9"), headers=cadre9)
    ).status_code == 201
    township = await stack.login("township.leader")
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()  # the tenant day
    day = (await stack.attendance.get(f"/v1/units/leye-v1/days/{today}", headers=township)).json()
    assert "cadre9" in day["present"]
    assert "cadre17" in day["missing"]
    outside = await stack.attendance.get(f"/v1/units/pingle/days/{today}", headers=township)
    assert outside.status_code == 404

    month = today[:7]
    report = (
        await stack.attendance.get(
            f"/v1/reports/stationing?unit_id=leye&month={month}", headers=township
        )
    ).json()
    stationed = {r["cadre_id"]: r for r in report["rows"]}
    assert {"cadre1", "cadre9", "cadre2", "cadre10"} <= set(stationed)
    assert "cadre5" not in stationed, "only stationed cadres are listed"
    assert all(r["below_minimum"] == (r["days_present"] < 20) for r in report["rows"])
    xlsx = await stack.attendance.get(
        f"/v1/reports/stationing?unit_id=leye&month={month}&format=xlsx", headers=township
    )
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    assert values[0] == ("干部", "单位", "在岗天数", "少于20天")
    assert len(values) == len(report["rows"]) + 1
    bad_month = await stack.attendance.get(
        "/v1/reports/stationing?unit_id=leye&month=2026-13", headers=township
    )
    assert bad_month.status_code == 422


# Every role against every endpoint: the status class each must get. "ok" is any 2xx (or a
# 409 where the request is allowed but the state says no, as for unbinding an unbound phone).
ROLES = {
    "cadre": "cadre11",
    "township leader": "township.leader",
    "county leader": "county.leader",
    "city leader": "city.leader",
    "org admin": "orgadmin",
    "super admin": "super.admin",
    "senior admin": "senior.admin",
    "junior admin": "junior.admin",
}


def expect(default: str, **per_role: str) -> dict[str, str]:
    """`default` for every role, except those named (role names with _ for spaces)."""
    return {role: per_role.get(role.replace(" ", "_"), default) for role in ROLES}


MATRIX: list[tuple[str, str, str, dict[str, str]]] = [
    # method, path, body, expected outcome per role
    ("GET", "/v1/check-ins", "", expect("ok")),
    ("POST", "/v1/check-ins", "check-in", expect("ok")),
    ("GET", "/v1/leaves", "", expect("ok")),
    ("GET", "/v1/approvals/pending", "", expect("ok")),
    (
        "POST",
        "/v1/cadres/cadre12/device/unbind",
        "unbind",
        expect("denied", org_admin="ok", super_admin="ok", senior_admin="ok"),
    ),
    ("GET", "/v1/units/leye/days/2026-11-20", "", expect("ok", cadre="hidden")),
    (
        "GET",
        "/v1/units/wangmo/days/2026-11-20",
        "",
        expect("ok", cadre="hidden", township_leader="hidden"),
    ),
    ("GET", "/v1/reports/stationing?unit_id=leye&month=2026-11", "", expect("ok", cadre="hidden")),
]
OUTCOME = {"ok": {200, 201, 204, 409}, "denied": {403}, "hidden": {404}}


@pytest.mark.parametrize(
    ("method", "path", "payload", "expected"),
    MATRIX,
    ids=[f"{m} {p.split('?')[0]}" for m, p, _, _ in MATRIX],
)
async def test_authorisation_matrix(
    stack: Stack, method: str, path: str, payload: str, expected: dict[str, str]
) -> None:
    for role, username in ROLES.items():
        headers = await stack.login(username)
        json_body: dict[str, Any] | None = {
            "check-in": body(f"matrix-{username}"),
            "unbind": {"reason": "matrix"},
            "": None,
        }[payload]
        response = await stack.attendance.request(method, path, headers=headers, json=json_body)
        assert response.status_code in OUTCOME[expected[role]], (
            f"{role}: {response.status_code} {response.text}"
        )
    anonymous = await stack.attendance.request(method, path, json=None if not payload else {})
    assert anonymous.status_code in {401, 422}
    if not payload:
        assert anonymous.status_code == 401


async def test_my_check_ins_come_newest_first_a_page_at_a_time(stack: Stack) -> None:
    headers = await stack.login("cadre6")  # no other test checks in as cadre6
    now = datetime.now(UTC)
    made: list[tuple[int, str]] = []
    for minutes_ago in (5, 1, 4, 2, 3):
        answer = await stack.attendance.post(
            "/v1/check-ins",
            json=body("phone-6", occurred_at=(now - timedelta(minutes=minutes_ago)).isoformat()),
            headers=headers,
        )
        assert answer.status_code == 201, answer.text
        made.append((minutes_ago, answer.json()["check_in_id"]))

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await stack.attendance.get("/v1/check-ins", params=params, headers=headers)
        assert page.status_code == 200, page.text
        seen += [item["check_in_id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        pages += 1
        if cursor is None:
            break
    assert seen == [check_in_id for _, check_in_id in sorted(made)]
    assert pages == 3

    bad = await stack.attendance.get(
        "/v1/check-ins", params={"cursor": "yesterday"}, headers=headers
    )
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid-cursor"
