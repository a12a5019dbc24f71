"""A synthetic tenant's event stream: units, cadres and leaders, then weeks of day closes,
flags, journal entries, reactions, endorsements, tasks and study, as the services would
publish them. Seeded, so a test and its expectation see the same events."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cadre.events.catalogue import EVENT_ADAPTER, AnyEvent
from cadre.events.envelope import new_event_id

TOWNS = ("east", "west")
TAGS = ("ideological_report", "study_notes", "publicity", "coordination_success", "")
LEVELS = ("township", "county", "city")
DIMENSIONS = ("politics", "discipline", "learning", "communication", "responsibility")


@dataclass
class SyntheticTenant:
    tenant: str
    cadres: int = 20
    days: int = 20
    start: date = date(2026, 10, 12)
    seed: int = 1
    timezone: str = "Asia/Shanghai"
    events: list[AnyEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # noqa: S311 - test data, not secrets
        self._zone = ZoneInfo(self.timezone)
        self._build()

    @property
    def root(self) -> str:
        return f"/{self.tenant}"

    def unit_path(self, cadre: int) -> str:
        return f"{self.root}/{TOWNS[cadre % len(TOWNS)]}"

    def cadre_id(self, n: int) -> str:
        return f"c{n:03d}"

    def directory(self) -> list[AnyEvent]:
        return [e for e in self.events if e.source == "directory"]

    def activity(self) -> list[AnyEvent]:
        return [e for e in self.events if e.source != "directory"]

    def _at(self, day: date, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute), self._zone).astimezone(UTC)

    def _event(
        self,
        event_type: str,
        subject: str,
        unit_path: str,
        occurred_at: datetime,
        data: dict[str, Any],
        actor: str | None = None,
    ) -> None:
        self.events.append(
            synthetic_event(event_type, self.tenant, subject, unit_path, occurred_at, data, actor)
        )

    def _build(self) -> None:
        before = self._at(self.start - timedelta(days=1), 8)
        self._event(
            "directory.unit_created",
            self.tenant,
            self.root,
            before,
            {"unit_id": self.tenant, "name": "county", "level": "county", "path": self.root},
        )
        for town in TOWNS:
            path = f"{self.root}/{town}"
            self._event(
                "directory.unit_created",
                town,
                path,
                before,
                {
                    "unit_id": town,
                    "parent_id": self.tenant,
                    "name": town,
                    "level": "township",
                    "path": path,
                },
            )
        for n in range(self.cadres):
            self._event(
                "directory.cadre_registered",
                self.cadre_id(n),
                self.unit_path(n),
                before,
                {
                    "cadre_id": self.cadre_id(n),
                    "name": f"cadre {n}",
                    "unit_id": TOWNS[n % len(TOWNS)],
                    "stationed": n % 4 == 0,
                },
            )
        for offset in range(self.days):
            day = self.start + timedelta(days=offset)
            for n in range(self.cadres):
                self._day(day, n)

    def _day(self, day: date, n: int) -> None:
        rnd = self._random
        cadre, path = self.cadre_id(n), self.unit_path(n)
        workday = day.weekday() < 5
        status = "present" if rnd.random() < 0.9 else rnd.choice(["absent", "on_leave"])
        if not workday:
            status = "holiday"
        self._event(
            "attendance.day_closed",
            cadre,
            path,
            self._at(day + timedelta(days=1), 0, 30),
            {"day": day.isoformat(), "status": status, "workday": workday},
        )
        if not workday:
            return
        if rnd.random() < 0.05:
            reasons = rnd.choice([["device_mismatch"], ["impossible_speed"], ["poor_accuracy"]])
            self._event(
                "attendance.check_in_flagged",
                cadre,
                path,
                self._at(day, 8, 40),
                {"device_id": f"d-{cadre}", "reasons": reasons},
            )
        if rnd.random() < 0.1:
            self._event(
                "attendance.checked_in",
                cadre,
                path,
                self._at(day, 15),
                {
                    "check_in_id": f"ci-{cadre}-{day}",
                    "device_id": f"d-{cadre}",
                    "mode": "meeting",
                    "lat": 25.4,
                    "lon": 106.1,
                    "accuracy_m": 10,
                    "branch_activity": True,
                },
            )
        if rnd.random() < 0.15:
            self._event(
                "journal.journal_missed",
                cadre,
                path,
                self._at(day + timedelta(days=1), 1),
                {"day": day.isoformat()},
            )
            return
        entry = f"e-{cadre}-{day.isoformat()}"
        tag = rnd.choice(TAGS)
        self._event(
            "journal.entry_posted",
            cadre,
            path,
            self._at(day, 18),
            {
                "entry_id": entry,
                "day": day.isoformat(),
                "text": "work log",
                "tags": [tag] if tag else [],
            },
        )
        if rnd.random() < 0.3:
            level = rnd.choice(LEVELS)
            self._event(
                "journal.entry_reacted",
                cadre,
                path,
                self._at(day, 20),
                {
                    "entry_id": entry,
                    "reaction": "like" if rnd.random() < 0.8 else "dislike",
                    "reason": "noted",
                    "reactor_level": level,
                    "dimension": rnd.choice([None, *DIMENSIONS]),
                },
                actor=f"leader-{level}",
            )
        if rnd.random() < 0.5:  # frequent enough to reach the half-year cap in tests
            self._event(
                "journal.peer_endorsed",
                cadre,
                path,
                self._at(day, 21, rnd.randrange(60)),
                {
                    "endorsement_id": f"p-{cadre}-{day}",
                    "endorser_id": self.cadre_id((n + 1) % self.cadres),
                    "dimension": "communication",
                    "reason": "helped",
                },
                actor=self.cadre_id((n + 1) % self.cadres),
            )
        if rnd.random() < 0.1:
            task = f"t-{cadre}-{day}"
            if rnd.random() < 0.7:
                self._event(
                    "journal.task_completed",
                    cadre,
                    path,
                    self._at(day, 17),
                    {"task_id": task, "dimension": "responsibility", "reward_points": 5},
                )
                if rnd.random() < 0.5:
                    self._event(
                        "journal.task_graded",
                        cadre,
                        path,
                        self._at(day, 19),
                        {
                            "task_id": task,
                            "quality_pct": rnd.choice([60, 80, 100]),
                            "grader_id": "boss",
                        },
                        actor="boss",
                    )
            else:
                self._event(
                    "journal.task_overdue",
                    cadre,
                    path,
                    self._at(day, 23),
                    {
                        "task_id": task,
                        "due_at": self._at(day, 22).isoformat(),
                        "penalty_points": 3,
                        "dimension": "responsibility",
                    },
                )
        if rnd.random() < 0.05:
            self._event(
                "journal.study_completed",
                cadre,
                path,
                self._at(day, 16),
                {"study_id": f"s-{cadre}-{day}", "party_theory": rnd.random() < 0.5},
            )


def synthetic_event(
    event_type: str,
    tenant: str,
    subject: str,
    unit_path: str,
    occurred_at: datetime,
    data: dict[str, Any],
    actor: str | None = None,
    *,
    event_id: uuid.UUID | None = None,
    recorded_at: datetime | None = None,
) -> AnyEvent:
    """A validated event as its service would publish it: the source is the type's prefix
    and the actor, unless given, is the subject."""
    envelope: dict[str, Any] = {
        "id": event_id or new_event_id(),
        "type": event_type,
        "source": event_type.split(".", 1)[0],
        "tenant": tenant,
        "subject": subject,
        "unit_path": unit_path,
        "occurred_at": occurred_at,
        "actor": actor or subject,
        "data": data,
    }
    if recorded_at is not None:
        envelope["recorded_at"] = recorded_at
    return EVENT_ADAPTER.validate_python(envelope)
