"""Demo activity for the demo tenant, posted through the public APIs as the phones and
leaders would: check-ins at each cadre's office, journal entries with tags, leaders' likes
and a dislike (with reasons), peer endorsements, and one cadre whose check-ins jump across
the county, so the dashboard has scores, rankings and a red light to show.

Every request carries an `Idempotency-Key` made of the tenant, the day and what it is, so
running it again on the same day adds nothing; 4xx answers (a day already recorded, a
check-in too old to sync) are counted and skipped, never fatal."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from cadre.events.service import POOLED_CONNECTION_MAX_IDLE_S

Reporter = Callable[[str], None]
PASSWORD = "demo"  # noqa: S105 (the documented demo login)
CADRES = [f"cadre{n}" for n in range(1, 21)]
# Tags the default ruleset gives points for, and the texts that go with them.
ENTRIES = [
    (["publicity"], "走访群众{n}户，宣讲惠民政策，收集意见建议。"),
    (["coordination_success"], "协调解决村道硬化用地问题，组织召开院坝会。"),
    (["study_notes"], "学习党的二十届四中全会精神，撰写心得体会。"),
    (["ideological_report"], "向党组织汇报思想和工作情况。"),
    ([], "整理扶贫台账，核对脱贫户收入数据{n}户。"),
]
SPOOFER = "cadre5"  # two impossible jumps: a red light for the demo


@dataclass
class DemoCounts:
    done: Counter[str]
    skipped: Counter[str]

    def summary(self) -> str:
        parts = [f"{kind} {count}" for kind, count in sorted(self.done.items())]
        skipped = sum(self.skipped.values())
        return ", ".join(parts) + (f" ({skipped} already there or refused)" if skipped else "")


class DemoClient:
    def __init__(self, urls: Mapping[str, str], tenant: str, timeout_s: float = 10.0) -> None:
        self.urls = dict(urls)
        self.tenant = tenant
        # Idle connections retired before the services would close them (see the constant).
        self.http = httpx.Client(
            timeout=timeout_s, limits=httpx.Limits(keepalive_expiry=POOLED_CONNECTION_MAX_IDLE_S)
        )
        self.tokens: dict[str, str] = {}
        self.counts = DemoCounts(Counter(), Counter())

    def close(self) -> None:
        self.http.close()

    def login(self, username: str) -> str:
        if username not in self.tokens:
            answer = self.http.post(
                self.urls["directory"] + "/v1/auth/token",
                json={"username": username, "password": PASSWORD, "tenant": self.tenant},
            )
            answer.raise_for_status()
            self.tokens[username] = answer.json()["access_token"]
        return self.tokens[username]

    def get(self, service: str, path: str, as_user: str) -> Any:
        answer = self.http.get(
            self.urls[service] + path,
            headers={"authorization": f"Bearer {self.login(as_user)}"},
        )
        answer.raise_for_status()
        return answer.json()

    def post(
        self, kind: str, service: str, path: str, as_user: str, body: Any, key: str
    ) -> Any | None:
        """POST once per key; a 4xx is counted as skipped and answers None."""
        answer = self.http.post(
            self.urls[service] + path,
            json=body,
            headers={
                "authorization": f"Bearer {self.login(as_user)}",
                "idempotency-key": f"demo:{self.tenant}:{key}",
            },
        )
        if 400 <= answer.status_code < 500:
            self.counts.skipped[kind] += 1
            return None
        answer.raise_for_status()
        self.counts.done[kind] += 1
        return answer.json()


def _offices(client: DemoClient) -> dict[str, tuple[float, float]]:
    """Each cadre's office: the first geofence of their unit."""
    offices: dict[str, tuple[float, float]] = {}
    fences: dict[str, tuple[float, float] | None] = {}
    for cadre in CADRES:
        unit_id = client.get("directory", f"/v1/cadres/{cadre}", "orgadmin")["unit_id"]
        if unit_id not in fences:
            found = client.get("directory", f"/v1/units/{unit_id}/geofences", "orgadmin")
            fences[unit_id] = (found[0]["lat"], found[0]["lon"]) if found else None
        office = fences[unit_id]
        if office is not None:
            offices[cadre] = office
    return offices


def check_in(
    client: DemoClient,
    cadre: str,
    at: datetime,
    where: tuple[float, float],
    key: str,
    mode: str = "normal",
) -> Any | None:
    return client.post(
        "check-ins",
        "attendance",
        "/v1/check-ins",
        cadre,
        {
            "device_id": f"demo-phone-{cadre}",
            "mode": mode,
            "lat": where[0],
            "lon": where[1],
            "accuracy_m": 15.0,
            "occurred_at": at.isoformat(),
            "note": "到岗" if mode == "normal" else "",
        },
        key,
    )


def spoof(client: DemoClient, cadre: str, key: str, now: datetime | None = None) -> int:
    """Check-ins 100 km apart a few minutes apart, twice: two `impossible_speed` flags, which
    turn the cadre's light red. Answers how many flagged check-ins were accepted."""
    now = now or datetime.now(UTC)
    far, home = (25.95, 106.95), (25.2263, 106.1489)
    flagged = 0
    for step, (minutes_ago, where) in enumerate([(50, home), (45, far), (40, home)]):
        answer = check_in(
            client, cadre, now - timedelta(minutes=minutes_ago), where, f"{key}:{step}"
        )
        if answer is not None and "impossible_speed" in answer.get("flags", []):
            flagged += 1
    return flagged


def seed_demo_activity(
    urls: Mapping[str, str],
    tenant: str = "demo",
    report: Reporter = print,
    now: datetime | None = None,
    seed: int = 7,
) -> DemoCounts:
    now = now or datetime.now(UTC)
    today = now.date()
    rng = random.Random(f"{seed}:{tenant}:{today}")  # noqa: S311 (demo data, reproducible)
    client = DemoClient(urls, tenant)
    try:
        offices = _offices(client)
        _check_ins(client, offices, now, today)
        entries = _journal(client, today, rng)
        _reactions(client, entries, today, rng)
        _endorsements(client, today)
        spoof(client, SPOOFER, f"{today}:spoof", now)
        report(f"demo activity for {tenant} on {today}: {client.counts.summary()}")
        return client.counts
    finally:
        client.close()


def _check_ins(
    client: DemoClient, offices: Mapping[str, tuple[float, float]], now: datetime, today: date
) -> None:
    morning = now - timedelta(hours=1)
    for cadre, office in offices.items():
        if cadre == SPOOFER:
            continue
        check_in(client, cadre, morning, office, f"{today}:check-in:{cadre}")


def _journal(client: DemoClient, today: date, rng: random.Random) -> dict[str, str]:
    """Entries for the last few days (the journal accepts recent days); the ids of today's."""
    todays: dict[str, str] = {}
    for cadre in CADRES:
        for back in range(4, -1, -1):
            day = today - timedelta(days=back)
            if rng.random() < 0.15 and back:
                continue  # some days go unwritten
            tags, text = ENTRIES[rng.randrange(len(ENTRIES))]
            answer = client.post(
                "entries",
                "journal",
                "/v1/entries",
                cadre,
                {"text": text.format(n=rng.randint(3, 12)), "tags": tags, "day": day.isoformat()},
                f"{day}:entry:{cadre}",
            )
            if answer is not None and back == 0:
                todays[cadre] = answer["entry_id"]
    return todays


def _reactions(
    client: DemoClient, entries: Mapping[str, str], today: date, rng: random.Random
) -> None:
    for cadre, entry_id in sorted(entries.items()):
        leader, reaction, reason = "county.leader", "like", "工作扎实，群众评价好"
        if cadre == "cadre8":
            reaction, reason = "dislike", "日志内容空泛，缺少具体成效"
        elif rng.random() < 0.5:
            leader = "township.leader"
        client.post(
            "reactions",
            "journal",
            f"/v1/entries/{entry_id}/reactions",
            leader,
            {"reaction": reaction, "reason": reason},
            f"{today}:reaction:{cadre}",
        )


def _endorsements(client: DemoClient, today: date) -> None:
    # Colleagues of one unit endorse each other (cadre1, 9 and 17 share a village).
    pairs = [("cadre1", "cadre9"), ("cadre9", "cadre17"), ("cadre17", "cadre1")]
    pairs += [("cadre4", "cadre12"), ("cadre12", "cadre4"), ("cadre2", "cadre10")]
    dimensions = ["communication", "responsibility", "discipline"]
    for n, (endorser, endorsed) in enumerate(pairs):
        client.post(
            "endorsements",
            "journal",
            "/v1/endorsements",
            endorser,
            {
                "cadre_id": endorsed,
                "dimension": dimensions[n % len(dimensions)],
                "reason": "主动帮助同事完成入户走访",
            },
            f"{today}:endorse:{endorser}:{endorsed}",
        )
