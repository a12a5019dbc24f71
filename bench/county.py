"""A synthetic county: a deterministic tenant (the same seed gives the same units, people,
event ids and bytes) with `days` of everyday activity, for the benchmarks and the fault
injection test.

    uv run python -m bench.county --cadres 1000 --days 30 [--seed 7] [--kafka localhost:29092]

The mix and its rates are in one table in the README (section "Synthetic county"); the
constants below are that table.

It feeds the system two ways: `publish` writes every event straight to Kafka with the
binary-mode CloudEvents envelope the services use (for replays); `check_in_bodies` gives the
bodies of `POST /v1/check-ins` for the ingest benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

from cadre.attendance.domain.leave import route_chain
from cadre.devstack.synthetic import synthetic_event
from cadre.events.calendar import WorkdayCalendar
from cadre.events.catalogue import AnyEvent
from cadre.events.relay import make_producer
from cadre.events.vocabulary import CheckInMode, LeaderLevel
from cadre.events.wire import encode

DEPARTMENTS = 12
TOWNSHIPS = 20
VILLAGES_PER_TOWNSHIP = 5
MODES: tuple[tuple[CheckInMode, float], ...] = (
    (CheckInMode.NORMAL, 0.72),
    (CheckInMode.MEETING, 0.08),
    (CheckInMode.VILLAGE_VISIT, 0.06),
    (CheckInMode.BUSINESS_TRIP, 0.04),
    (CheckInMode.GOING_OUT, 0.04),
    (CheckInMode.STUDY, 0.03),
    (CheckInMode.TRAINING, 0.03),
)
DESTINATION_MODES = {CheckInMode.VILLAGE_VISIT, CheckInMode.BUSINESS_TRIP, CheckInMode.GOING_OUT}
TAGS = ("ideological_report", "study_notes", "publicity", "coordination_success")
REACTION_DIMENSIONS = (None, "politics", "discipline", "learning", "communication")
LEAVE_START_RATE = 0.008
ABSENT_RATE = 0.01
JOURNAL_RATE = 0.90
REACTION_RATE = 0.25
ENDORSE_RATE = 0.12
RING_SHARE = 0.01
TASK_DONE_RATE = 0.85
STUDY_DONE_RATE = 0.90
SPOOF_RATE = 0.002


@dataclass(frozen=True)
class Unit:
    unit_id: str
    parent_id: str | None
    name: str
    level: str
    path: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Person:
    cadre_id: str
    unit: Unit
    stationed: bool
    leader_level: LeaderLevel | None

    @property
    def device_id(self) -> str:
        return f"phone-{self.cadre_id}"


@dataclass
class County:
    cadres: int = 1000
    days: int = 30
    seed: int = 7
    tenant: str = "county"
    end: date = date(2026, 11, 20)  # the last day of activity
    timezone: str = "Asia/Shanghai"
    units: list[Unit] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._zone = ZoneInfo(self.timezone)
        self._calendar = WorkdayCalendar()
        self._build_tree()

    @property
    def start(self) -> date:
        return self.end - timedelta(days=self.days - 1)

    # --- the tree and the people -------------------------------------------------------
    def _build_tree(self) -> None:
        rnd = random.Random(f"{self.seed}:tree")  # noqa: S311 - benchmark data, not secrets
        root = Unit(self.tenant, None, "县委组织部", "county", f"/{self.tenant}", 25.4, 106.1)
        self.units.append(root)
        departments = [
            Unit(f"d{i:02d}", root.unit_id, f"县直部门{i}", "department", f"{root.path}/d{i:02d}",
                 25.4 + rnd.uniform(-0.01, 0.01), 106.1 + rnd.uniform(-0.01, 0.01))
            for i in range(DEPARTMENTS)
        ]  # fmt: skip
        townships, villages = [], []
        for t in range(TOWNSHIPS):
            town = Unit(f"t{t:02d}", root.unit_id, f"乡镇{t}", "township", f"{root.path}/t{t:02d}",
                        25.0 + rnd.uniform(0, 0.8), 105.7 + rnd.uniform(0, 0.8))  # fmt: skip
            townships.append(town)
            for v in range(VILLAGES_PER_TOWNSHIP):
                vid = f"t{t:02d}v{v}"
                villages.append(
                    Unit(vid, town.unit_id, f"村{t}-{v}", "village", f"{town.path}/{vid}",
                         town.lat + rnd.uniform(-0.05, 0.05), town.lon + rnd.uniform(-0.05, 0.05))
                )  # fmt: skip
        self.units += departments + townships + villages
        for n in range(self.cadres):
            place = rnd.random()
            stationed = False
            leader: LeaderLevel | None = None
            if place < 0.2:
                unit = departments[n % DEPARTMENTS]
                leader = LeaderLevel.COUNTY if rnd.random() < 0.05 else None
            elif place < 0.6:
                unit = townships[n % TOWNSHIPS]
                leader = LeaderLevel.TOWNSHIP if rnd.random() < 0.225 else None
            else:
                unit = villages[n % len(villages)]
                stationed = rnd.random() < 0.375
            self.people.append(Person(f"c{n:06d}", unit, stationed, leader))
        if not any(p.leader_level is LeaderLevel.COUNTY for p in self.people):
            first = self.people[0]
            self.people[0] = Person(first.cadre_id, first.unit, False, LeaderLevel.COUNTY)
        # Fixed for the whole run, so built once rather than per day or per reaction.
        self.teams: dict[str, list[Person]] = {}
        for person in self.people:
            self.teams.setdefault(person.unit.unit_id, []).append(person)
        county = [p for p in self.people if p.leader_level is LeaderLevel.COUNTY]
        self.approvers: dict[LeaderLevel, list[Person]] = {
            level: [p for p in self.people if p.leader_level is level] or county
            for level in LeaderLevel
        }

    # --- events -----------------------------------------------------------------------
    def _at(self, day: date, hour: int, minute: int) -> datetime:
        return datetime.combine(day, clock(hour, minute), self._zone).astimezone(UTC)

    def events(self) -> Iterator[AnyEvent]:
        """Every event, the directory first, then day by day."""
        rnd = random.Random(f"{self.seed}:events")  # noqa: S311
        make = _EventMaker(self.tenant, rnd)
        yield from self._directory(make)
        rings = self._rings(rnd)
        leave_until: dict[str, date] = {}
        for offset in range(self.days):
            yield from self._day(make, rnd, self.start + timedelta(days=offset), rings, leave_until)

    def _directory(self, make: _EventMaker) -> Iterator[AnyEvent]:
        before = self._at(self.start - timedelta(days=1), 8, 0)
        data: dict[str, Any]
        for unit in self.units:
            data = {"unit_id": unit.unit_id, "parent_id": unit.parent_id, "name": unit.name,
                    "level": unit.level, "path": unit.path}  # fmt: skip
            yield make("directory.unit_created", unit.unit_id, unit.path, before, data, "admin")
            if unit.level != "county":
                fence = {"unit_id": unit.unit_id, "fence_id": "office", "lat": unit.lat,
                         "lon": unit.lon, "radius_m": 500.0}  # fmt: skip
                yield make(
                    "directory.geofence_set", unit.unit_id, unit.path, before, fence, "admin"
                )
        for person in self.people:
            data = {"cadre_id": person.cadre_id, "name": f"干部{person.cadre_id[1:]}",
                    "unit_id": person.unit.unit_id, "stationed": person.stationed,
                    "leader_level": person.leader_level}  # fmt: skip
            yield make("directory.cadre_registered", person.cadre_id, person.unit.path, before,
                       data, "admin")  # fmt: skip
            if person.leader_level is not None:
                role = {"cadre_id": person.cadre_id, "role": "leader",
                        "unit_id": person.unit.unit_id, "level": person.leader_level}  # fmt: skip
                yield make("directory.role_granted", person.cadre_id, person.unit.path, before,
                           role, "admin")  # fmt: skip

    def _rings(self, rnd: random.Random) -> dict[str, list[str]]:
        """Reciprocal endorsement rings of three teammates, about 1% of people."""
        rings: dict[str, list[str]] = {}
        wanted = max(1, round(len(self.people) * RING_SHARE / 3))
        candidates = [members for members in self.teams.values() if len(members) >= 3]
        for members in rnd.sample(candidates, min(wanted, len(candidates))):
            ring = [p.cadre_id for p in members[:3]]
            for cadre in ring:
                rings[cadre] = [c for c in ring if c != cadre]
        return rings

    def _day(
        self,
        make: _EventMaker,
        rnd: random.Random,
        day: date,
        rings: dict[str, list[str]],
        leave_until: dict[str, date],
    ) -> Iterator[AnyEvent]:
        workday = self._calendar.is_workday(day)
        for person in self.people:
            cadre, path = person.cadre_id, person.unit.path
            on_leave = leave_until.get(cadre, date.min) >= day
            if workday and not on_leave and rnd.random() < LEAVE_START_RATE:
                yield from self._leave(make, rnd, person, day, leave_until)
                on_leave = leave_until.get(cadre, date.min) >= day
            status = "holiday" if not workday else "on_leave" if on_leave else "present"
            if status == "present" and rnd.random() < ABSENT_RATE:
                status = "absent"
            modes: list[str] = []
            if status == "present":
                for hour, minute_span in ((7, (50, 120)), (17, (30, 100))):
                    minute = rnd.randrange(*minute_span)
                    at = self._at(day, hour + minute // 60, minute % 60)
                    body = self._check_in_body(rnd, person, at)
                    modes.append(body["mode"])
                    data = {"check_in_id": f"ci-{cadre}-{day:%m%d}-{hour}", **body,
                            "within_geofence": True}  # fmt: skip
                    data.pop("occurred_at")
                    yield make("attendance.checked_in", cadre, path, at, data)
                    if rnd.random() < SPOOF_RATE:
                        reasons = rnd.choice(
                            [["impossible_speed"], ["repeated_coordinates"], ["device_mismatch"]]
                        )
                        spoof = {"check_in_id": data["check_in_id"],
                                 "device_id": person.device_id, "reasons": reasons}  # fmt: skip
                        yield make("attendance.check_in_flagged", cadre, path, at, spoof)
                yield from self._journal(make, rnd, person, day, rings)
            elif status == "absent":
                missed = self._at(day + timedelta(days=1), 0, 20)
                yield make("journal.journal_missed", cadre, path, missed, {"day": day})
            if workday and day.weekday() == 0:
                yield from self._task(make, rnd, person, day, status == "present")
            if day.day in (1, 15):
                yield from self._study(make, rnd, person, day)
            closed = self._at(day + timedelta(days=1), 0, 10)
            close = {"day": day, "status": status, "workday": workday,
                     "modes": sorted(set(modes))}  # fmt: skip
            yield make("attendance.day_closed", cadre, path, closed, close, "attendance")

    def _check_in_body(self, rnd: random.Random, person: Person, at: datetime) -> dict[str, Any]:
        if person.stationed and rnd.random() < 0.4:
            mode = CheckInMode.VILLAGE_VISIT
        else:
            mode = _weighted(rnd, MODES)
        unit = person.unit
        body: dict[str, Any] = {
            "device_id": person.device_id,
            "mode": mode.value,
            "lat": round(unit.lat + rnd.uniform(-0.002, 0.002), 6),
            "lon": round(unit.lon + rnd.uniform(-0.002, 0.002), 6),
            "accuracy_m": float(rnd.choice((5, 8, 10, 15, 20, 30))),
            "occurred_at": at,
            "note": "",
        }
        if mode is CheckInMode.MEETING and rnd.random() < 1 / 3:
            body["branch_activity"] = True
            body["note"] = "党支部主题党日"
        if mode in DESTINATION_MODES:
            body["destination"] = f"{unit.name}辖区"
        return body

    def _leave(
        self,
        make: _EventMaker,
        rnd: random.Random,
        person: Person,
        day: date,
        leave_until: dict[str, date],
    ) -> Iterator[AnyEvent]:
        length = rnd.choice((1, 1, 2, 3, 5))
        ends = day
        while self._calendar.count_workdays(day, ends) < length:
            ends += timedelta(days=1)
        workdays = float(self._calendar.count_workdays(day, ends))
        chain = route_chain(workdays, person.leader_level)
        leave_id = f"lv-{person.cadre_id}-{day:%m%d}"
        cadre, path = person.cadre_id, person.unit.path
        asked = self._at(day - timedelta(days=1), 9, rnd.randrange(60))
        kind = rnd.choice(("annual", "personal", "sick", "compensatory"))
        request = {"leave_id": leave_id, "kind": kind, "starts_on": day, "ends_on": ends,
                   "workdays": workdays, "reason": "家中有事",
                   "chain": [{"level": level} for level in chain]}  # fmt: skip
        yield make("attendance.leave_requested", cadre, path, asked, request)
        for step, level in enumerate(chain):
            approver = rnd.choice(self.approvers[level]).cadre_id
            decided = asked + timedelta(hours=step + 1)
            if rnd.random() < 0.1 / len(chain):
                reject = {"leave_id": leave_id, "step": step, "level": level,
                          "approver_id": approver, "reason": "工作冲突"}  # fmt: skip
                yield make("attendance.leave_rejected", cadre, path, decided, reject, approver)
                return
            approve = {"leave_id": leave_id, "step": step, "level": level,
                       "approver_id": approver}  # fmt: skip
            yield make("attendance.leave_step_approved", cadre, path, decided, approve, approver)
        approved = {"leave_id": leave_id, "kind": kind, "starts_on": day, "ends_on": ends,
                    "workdays": workdays}  # fmt: skip
        yield make("attendance.leave_approved", cadre, path, decided, approved, approver)
        leave_until[cadre] = ends

    def _journal(
        self,
        make: _EventMaker,
        rnd: random.Random,
        person: Person,
        day: date,
        rings: dict[str, list[str]],
    ) -> Iterator[AnyEvent]:
        cadre, path = person.cadre_id, person.unit.path
        if rnd.random() >= JOURNAL_RATE:
            missed = self._at(day + timedelta(days=1), 0, 20)
            yield make("journal.journal_missed", cadre, path, missed, {"day": day})
        else:
            entry = f"e-{cadre}-{day:%m%d}"
            tags = [rnd.choice(TAGS)] if rnd.random() < 0.6 else []
            posted = self._at(day, 18, rnd.randrange(50, 60 + 180) % 60)
            data = {"entry_id": entry, "day": day, "text": "走访群众，整理台账", "tags": tags}
            yield make("journal.entry_posted", cadre, path, posted, data)
            if rnd.random() < REACTION_RATE:
                level = rnd.choice((LeaderLevel.TOWNSHIP, LeaderLevel.TOWNSHIP, LeaderLevel.COUNTY))
                leader = rnd.choice(self.approvers[level])
                like = rnd.random() < 0.8
                reaction = {"entry_id": entry, "reaction": "like" if like else "dislike",
                            "reason": "内容扎实" if like else "记录过于简单",
                            "reactor_level": level, "entry_day": day,
                            "dimension": rnd.choice(REACTION_DIMENSIONS)}  # fmt: skip
                at = posted + timedelta(hours=2)
                yield make("journal.entry_reacted", cadre, path, at, reaction, leader.cadre_id)
        endorsers = list(rings.get(cadre, ()))
        if rnd.random() < ENDORSE_RATE:
            team = self.teams[person.unit.unit_id]
            if len(team) > 1:
                other = rnd.choice(team)
                if other.cadre_id != cadre:
                    endorsers.append(other.cadre_id)
        for endorser in endorsers:
            at = self._at(day, 20, rnd.randrange(60))
            endorse = {"endorsement_id": f"en-{endorser}-{cadre}-{day:%m%d}",
                       "endorser_id": endorser, "dimension": "communication",
                       "reason": "主动协助", "reciprocal": cadre in rings}  # fmt: skip
            yield make("journal.peer_endorsed", cadre, path, at, endorse, endorser)

    def _task(
        self,
        make: _EventMaker,
        rnd: random.Random,
        person: Person,
        monday: date,
        present: bool,
    ) -> Iterator[AnyEvent]:
        cadre, path = person.cadre_id, person.unit.path
        task = f"t-{cadre}-{monday:%m%d}"
        assigner = rnd.choice(self.approvers[LeaderLevel.TOWNSHIP]).cadre_id
        due = self._at(monday + timedelta(days=4), 18, 0)
        assigned = {"task_id": task, "title": "人居环境整治", "due_at": due,
                    "reward_points": 5.0, "penalty_points": 3.0,
                    "dimension": "responsibility", "assigner_id": assigner}  # fmt: skip
        yield make("journal.task_assigned", cadre, path, self._at(monday, 9, 0), assigned, assigner)
        if present and rnd.random() < TASK_DONE_RATE:
            done_at = due - timedelta(days=rnd.randrange(1, 4), hours=2)
            done = {"task_id": task, "dimension": "responsibility", "reward_points": 5.0}
            yield make("journal.task_completed", cadre, path, done_at, done)
            if rnd.random() < 0.5:
                grade = {"task_id": task, "quality_pct": float(rnd.choice((60, 80, 90, 100))),
                         "grader_id": assigner}  # fmt: skip
                at = done_at + timedelta(hours=3)
                yield make("journal.task_graded", cadre, path, at, grade, assigner)
        else:
            overdue = {"task_id": task, "due_at": due, "penalty_points": 3.0,
                       "dimension": "responsibility"}  # fmt: skip
            yield make("journal.task_overdue", cadre, path, due + timedelta(minutes=5), overdue,
                       "journal")  # fmt: skip

    def _study(
        self, make: _EventMaker, rnd: random.Random, person: Person, day: date
    ) -> Iterator[AnyEvent]:
        cadre, path = person.cadre_id, person.unit.path
        study = f"s-{cadre}-{day:%m%d}"
        party = day.day == 1
        assigned = {"study_id": study, "title": "理论学习" if party else "业务学习",
                    "party_theory": party, "due_on": day + timedelta(days=10)}  # fmt: skip
        yield make("journal.study_assigned", cadre, path, self._at(day, 9, 30), assigned, "admin")
        if rnd.random() < STUDY_DONE_RATE:
            done = {"study_id": study, "party_theory": party, "minutes": rnd.choice((30, 45, 60))}
            at = self._at(day + timedelta(days=rnd.randrange(0, 5)), 21, 0)
            yield make("journal.study_completed", cadre, path, at, done)


class _EventMaker:
    """Builds validated envelopes with ids drawn from the seeded generator (UUIDv7 layout,
    time from `occurred_at`), so the same seed gives byte-identical records."""

    def __init__(self, tenant: str, rnd: random.Random) -> None:
        self.tenant = tenant
        self.rnd = rnd

    def event_id(self, at: datetime) -> uuid.UUID:
        millis = int(at.timestamp() * 1000)
        bits = self.rnd.getrandbits(74)
        value = (millis << 80) | (0x7 << 76) | ((bits >> 62) << 64) | (0b10 << 62)
        return uuid.UUID(int=value | (bits & ((1 << 62) - 1)))

    def __call__(
        self,
        event_type: str,
        subject: str,
        unit_path: str,
        at: datetime,
        data: dict[str, Any],
        actor: str | None = None,
    ) -> AnyEvent:
        return synthetic_event(event_type, self.tenant, subject, unit_path, at, data, actor,
                               event_id=self.event_id(at), recorded_at=at)  # fmt: skip


def _weighted(rnd: random.Random, choices: tuple[tuple[CheckInMode, float], ...]) -> CheckInMode:
    point = rnd.random() * sum(weight for _, weight in choices)
    for mode, weight in choices:
        point -= weight
        if point < 0:
            return mode
    return choices[-1][0]


async def publish(
    bootstrap: str,
    events: Iterator[AnyEvent],
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Write events straight to their topics (binary-mode CloudEvents, keyed by subject)
    with the relay's producer settings; returns how many were acknowledged."""
    producer = make_producer(bootstrap)
    await producer.start()
    count = 0
    try:
        pending = []
        for event in events:
            record = encode(event)
            pending.append(
                await producer.send(
                    record.topic, key=record.key, value=record.value, headers=record.headers
                )
            )
            count += 1
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
                if on_progress is not None:
                    on_progress(count)
        await asyncio.gather(*pending)
        if on_progress is not None:
            on_progress(count)
    finally:
        await producer.stop()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cadres", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tenant", default="county")
    parser.add_argument("--kafka", help="publish to this bootstrap server instead of counting")
    args = parser.parse_args()
    county = County(args.cadres, args.days, args.seed, args.tenant)
    started = time.perf_counter()
    if args.kafka:
        total = asyncio.run(
            publish(args.kafka, county.events(), lambda n: print(f"{n:,} published", flush=True))
        )
    else:
        counts: dict[str, int] = {}
        for event in county.events():
            counts[event.type] = counts.get(event.type, 0) + 1
        for name, n in sorted(counts.items()):
            print(f"{name:32} {n:>10,}")
        total = sum(counts.values())
    elapsed = time.perf_counter() - started
    print(f"{total:,} events in {elapsed:.1f} s ({total / elapsed:,.0f}/s)")


if __name__ == "__main__":
    main()
