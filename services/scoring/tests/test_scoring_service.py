"""The scoring service on the real servers: events published straight to Kafka (as the
services not built yet would publish them) are folded into the projection, and the query
API, lights, the monthly ranking, voiding, late events and ruleset reloads behave as the
issue asks. Expectations come from the pure domain applied to the same events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from redis.asyncio import Redis

from cadre.devstack.infra import Infra, create_databases, create_topics
from cadre.devstack.synthetic import SyntheticTenant
from cadre.devstack.testing import TokenMint, eventually, publish_events, read_topic, unique_tenant
from cadre.events.catalogue import EVENT_ADAPTER, AnyEvent
from cadre.events.db import migrate_async
from cadre.events.envelope import new_event_id
from cadre.events.topics import events_topic
from cadre.events.vocabulary import Dimension, LeaderLevel, Role
from cadre.events.wire import decode, header_map
from cadre.scoring.adapters import queries
from cadre.scoring.domain.contributions import contributions, radar
from cadre.scoring.domain.digest import digest_of_events
from cadre.scoring.domain.facts import fold
from cadre.scoring.domain.ruleset import default_ruleset
from cadre.scoring.entrypoints.app import create_app
from cadre.scoring.settings import ScoringSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TODAY = "2026-11-01"  # the 1st: October's ranking is due
OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))
SCORING_TOPIC = events_topic("scoring")


@dataclass
class Scoring:
    app: FastAPI
    client: httpx.AsyncClient
    tenant: str
    synthetic: SyntheticTenant
    topics: dict[str, str]
    mint: TokenMint
    rulesets_dir: Path
    redis_url: str
    bootstrap: str

    def admin(self) -> dict[str, str]:
        return self.mint.headers("admin", f"/{self.tenant}", Role.ORG_ADMIN)

    def cadre(self, n: int) -> dict[str, str]:
        synthetic = self.synthetic
        return self.mint.headers(synthetic.cadre_id(n), synthetic.unit_path(n), Role.CADRE)

    def leader(self, town: str) -> dict[str, str]:
        return self.mint.headers(
            f"leader-{town}", f"/{self.tenant}/{town}", Role.LEADER, level=LeaderLevel.TOWNSHIP
        )

    async def publish(self, events: list[AnyEvent]) -> None:
        await publish_events(self.bootstrap, events, lambda e: self.topics[e.source])

    async def digest(self) -> str:
        state = self.app.state.scoring
        return await queries.generation_digest(
            state.sessions, await state.generation(), self.tenant
        )

    async def get(self, path: str, headers: dict[str, str] | None = None, /, **params: Any) -> Any:
        response = await self.client.get(path, headers=headers or self.admin(), params=params)
        assert response.status_code == 200, response.text
        return response.json()


def late_event(tenant: SyntheticTenant, event_type: str, n: int, at: datetime, **data: Any) -> Any:
    return EVENT_ADAPTER.validate_python(
        {
            "id": new_event_id(),
            "type": event_type,
            "source": event_type.split(".")[0],
            "tenant": tenant.tenant,
            "subject": tenant.cadre_id(n),
            "unit_path": tenant.unit_path(n),
            "occurred_at": at,
            "actor": tenant.cadre_id(n),
            "data": data,
        }
    )


@pytest_asyncio.fixture(scope="module")
async def scoring(
    infra: Infra, kafka_bootstrap: str, tmp_path_factory: Any
) -> AsyncIterator[Scoring]:
    tenant = unique_tenant()
    database = f"scoring_{uuid.uuid4().hex[:8]}"
    await create_databases(infra.pg_url("postgres", "postgresql"), [database])
    url = infra.pg_url(database)
    await migrate_async("cadre.scoring.adapters.migrations", url)
    suffix = uuid.uuid4().hex[:8]
    topics = {s: f"scoring-test-{s}.{suffix}.v1" for s in ("directory", "attendance", "journal")}
    await create_topics(
        kafka_bootstrap,
        [t for name in topics.values() for t in (name, name + ".dlq")],
        partitions=3,
    )
    topics["scoring"] = SCORING_TOPIC
    rulesets_dir = tmp_path_factory.mktemp("rulesets")
    default_text = (
        Path(__file__).parents[1] / "src/cadre/scoring/rulesets/default.toml"
    ).read_text()
    (rulesets_dir / f"{tenant}.toml").write_text(
        default_text.replace('version = "2026.1"', 'version = "t-1"')
    )
    settings = ScoringSettings(
        database_url=url,
        kafka_bootstrap=kafka_bootstrap,
        redis_url=infra.redis_url,
        rulesets_dir=rulesets_dir,
        ruleset_reload_s=0.5,
        group_prefix=f"scoring-test-{suffix}",
        topics=list(topics.values()),
        pointer_poll_s=0.5,
        lights_interval_s=1.0,
        relay_poll_interval_s=0.2,
        today=TODAY,
    )
    app = create_app(settings)
    synthetic = SyntheticTenant(tenant, cadres=20, days=20, start=date(2026, 10, 12))
    mint = TokenMint(tenant)
    async with app.router.lifespan_context(app):
        app.state.verifier = mint.verifier()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://scoring"
        )
        fixture = Scoring(
            app,
            client,
            tenant,
            synthetic,
            topics,
            mint,
            rulesets_dir,
            infra.redis_url,
            kafka_bootstrap,
        )
        await fixture.publish(synthetic.events)
        expected = digest_of_events(synthetic.events, default_ruleset())

        async def folded() -> bool:
            return await fixture.digest() == expected

        await eventually(folded, timeout_s=90, message="the projection to hold every event")
        yield fixture
        await client.aclose()


def pure_radar(events: list[AnyEvent], cadre: str, bounds: tuple[date, date]) -> Any:
    ruleset = default_ruleset()
    return radar(
        contributions(fold({}, events, ruleset.timezone), ruleset), cadre, *bounds, ruleset
    )


async def test_radar_matches_the_pure_rules_and_explain_adds_up(scoring: Scoring) -> None:
    expected = pure_radar(scoring.synthetic.events, "c000", OCTOBER)
    answer = await scoring.get("/v1/cadres/c000/radar", scoring.cadre(0), period="2026-10")
    assert answer["cadre_id"] == "c000"
    assert answer["period"] == "2026-10"
    assert answer["generation"] == 1
    assert answer["ruleset_version"] == "t-1"
    assert answer["dimensions"] == {
        d.value: pytest.approx(v) for d, v in expected.dimensions.items()
    }
    assert answer["composite"] == pytest.approx(expected.composite)
    for dimension in Dimension:
        explained = await scoring.get(
            "/v1/cadres/c000/explain", scoring.cadre(0), period="2026-10", dimension=dimension.value
        )
        assert explained["total"] == pytest.approx(answer["dimensions"][dimension.value])
        assert sum(i["points"] for i in explained["items"]) == pytest.approx(explained["total"])
        assert all(i["event_id"] and i["rule"] for i in explained["items"])
    communication = await scoring.get(
        "/v1/cadres/c000/explain", period="2026", dimension="communication"
    )
    endorsed = [i for i in communication["items"] if i["rule"] == "endorsement"]
    assert sum(i["points"] for i in endorsed) <= 20, "the half-year cap holds"
    assert any(i["cap_effect"] < 0 for i in endorsed) == (len(endorsed) > 20)


@pytest.mark.parametrize("cursor", ["\u00b9", "9" * 30, "-1", "next"])
async def test_explain_refuses_a_cursor_it_did_not_give_out(scoring: Scoring, cursor: str) -> None:
    answer = await scoring.client.get(
        "/v1/cadres/c000/explain",
        headers=scoring.admin(),
        params={"period": "2026-10", "dimension": "communication", "cursor": cursor},
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "invalid-cursor"


async def test_the_unit_average_is_the_mean_radar_of_the_cadres_unit(scoring: Scoring) -> None:
    synthetic = scoring.synthetic
    east = [synthetic.cadre_id(n) for n in range(20) if n % 2 == 0]
    expected = [pure_radar(synthetic.events, cadre, OCTOBER) for cadre in east]
    answer = await scoring.get("/v1/cadres/c000/unit-average", scoring.cadre(0), period="2026-10")
    assert answer["unit_path"] == synthetic.unit_path(0)
    assert answer["members"] == len(east)
    for dimension in Dimension:
        mean = sum(r.dimensions[dimension] for r in expected) / len(east)
        assert answer["dimensions"][dimension.value] == pytest.approx(mean)
    assert answer["composite"] == pytest.approx(sum(r.composite for r in expected) / len(east))
    hidden = await scoring.client.get("/v1/cadres/c001/unit-average", headers=scoring.cadre(0))
    assert hidden.status_code == 404, "no average of a unit through someone you may not see"


async def test_the_timeline_gives_each_day(scoring: Scoring) -> None:
    answer = await scoring.get(
        "/v1/cadres/c000/timeline", **{"from": "2026-10-10", "to": "2026-10-20"}
    )
    days = answer["days"]
    assert days[0]["day"] == "2026-10-10"
    assert len(days) == 11
    assert days[0]["composite"] == 0, "nothing happened before the stream began"
    month = await scoring.get("/v1/cadres/c000/radar", period="2026-10")
    whole = await scoring.get(
        "/v1/cadres/c000/timeline", **{"from": "2026-10-01", "to": "2026-10-31"}
    )
    assert sum(d["composite"] for d in whole["days"]) == pytest.approx(month["composite"])
    bad = await scoring.client.get(
        "/v1/cadres/c000/timeline",
        headers=scoring.admin(),
        params={"from": "2026-10-20", "to": "2026-10-01"},
    )
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid-range"


@pytest.mark.parametrize("bounds", [{"to": "0001-01-01"}, {"from": "9999-12-31"}])
async def test_the_timeline_refuses_days_at_the_edges_of_the_calendar(
    scoring: Scoring, bounds: dict[str, str]
) -> None:
    # A month back from the first day Python knows, or a day past its last, cannot be
    # counted; such days are a 422, not a crash.
    answer = await scoring.client.get(
        "/v1/cadres/c000/timeline", headers=scoring.admin(), params=bounds
    )
    assert answer.status_code == 422, answer.text


async def test_a_cadre_sees_themself_and_a_leader_their_subtree(scoring: Scoring) -> None:
    own = await scoring.client.get("/v1/cadres/c000/radar", headers=scoring.cadre(0))
    other = await scoring.client.get("/v1/cadres/c001/radar", headers=scoring.cadre(0))
    assert own.status_code == 200
    assert other.status_code == 404
    east, west = scoring.leader("east"), scoring.leader("west")
    assert (await scoring.client.get("/v1/cadres/c000/radar", headers=east)).status_code == 200
    assert (await scoring.client.get("/v1/cadres/c001/radar", headers=east)).status_code == 404
    assert (await scoring.client.get("/v1/units/east/ranking", headers=east)).status_code == 200
    assert (await scoring.client.get("/v1/units/west/ranking", headers=east)).status_code == 404
    assert (await scoring.client.get("/v1/units/west/ranking", headers=west)).status_code == 200
    assert (
        await scoring.client.get("/v1/units/east/ranking", headers=scoring.cadre(0))
    ).status_code == 404
    unauthenticated = await scoring.client.get("/v1/cadres/c000/radar")
    assert unauthenticated.status_code == 401
    bad_period = await scoring.client.get(
        "/v1/cadres/c000/radar", headers=scoring.admin(), params={"period": "2026-13"}
    )
    assert bad_period.status_code == 422
    assert bad_period.json()["code"] == "invalid-period"


async def test_the_ranking_is_served_from_redis_and_rebuilt_when_redis_lost_it(
    scoring: Scoring,
) -> None:
    ruleset = default_ruleset()
    items = contributions(fold({}, scoring.synthetic.events, ruleset.timezone), ruleset)
    expected = {
        scoring.synthetic.cadre_id(n): radar(
            items, scoring.synthetic.cadre_id(n), *OCTOBER, ruleset
        ).composite
        for n in range(20)
    }
    tenant_root = scoring.tenant
    first = await scoring.get(f"/v1/units/{tenant_root}/ranking", period="2026-10", limit=500)
    assert first["total"] == 20
    assert {i["cadre_id"]: i["composite"] for i in first["items"]} == pytest.approx(expected)
    composites = [i["composite"] for i in first["items"]]
    assert composites == sorted(composites, reverse=True)
    assert [i["rank"] for i in first["items"]] == list(range(1, 21))

    page = await scoring.get(f"/v1/units/{tenant_root}/ranking", period="2026-10", limit=5)
    assert page["rebuilt"] is False, "the second read comes from Redis"
    assert [i["cadre_id"] for i in page["items"]] == [i["cadre_id"] for i in first["items"][:5]]
    after = await scoring.get(
        f"/v1/units/{tenant_root}/ranking", period="2026-10", limit=5, cursor=page["next_cursor"]
    )
    assert [i["rank"] for i in after["items"]] == [6, 7, 8, 9, 10]

    redis = Redis.from_url(scoring.redis_url)
    try:
        lost = [key async for key in redis.scan_iter(match=f"scoring:g*:{scoring.tenant}:*")]
        assert lost, "the ranking was cached in Redis"
        await redis.delete(*lost)  # what a FLUSHDB does to this tenant
    finally:
        await redis.aclose()
    rebuilt = await scoring.get(f"/v1/units/{tenant_root}/ranking", period="2026-10", limit=500)
    assert rebuilt["rebuilt"] is True
    assert rebuilt["items"] == first["items"]


async def test_absences_turn_the_light_red_with_reasons_and_announce_it(scoring: Scoring) -> None:
    synthetic = scoring.synthetic
    absences = [
        late_event(
            synthetic,
            "attendance.day_closed",
            2,
            datetime(2026, 10, d, 18, tzinfo=UTC),
            day=f"2026-10-{d:02d}",
            status="absent",
            workday=True,
        )
        for d in (8, 9, 10)
    ]
    await scoring.publish(absences)

    async def red() -> bool:
        lights = await scoring.get(f"/v1/units/{scoring.tenant}/lights", light="red")
        return any(i["cadre_id"] == "c002" for i in lights["items"])

    await eventually(red, timeout_s=30, message="c002's light to turn red")
    lights = await scoring.get(f"/v1/units/{scoring.tenant}/lights")
    assert sum(lights["summary"].values()) == 20
    mine = next(i for i in lights["items"] if i["cadre_id"] == "c002")
    assert any("absences in the last 30 days" in reason for reason in mine["reasons"])
    assert lights["items"][0]["light"] == "red", "red comes first"

    def announced(records: list[Any]) -> bool:
        return any(_is_light_change(r, scoring.tenant, "c002", "red") for r in records)

    await read_topic(scoring.bootstrap, SCORING_TOPIC, until=announced, timeout_s=30)


def _is_light_change(record: Any, tenant: str, cadre: str, light: str) -> bool:
    headers = header_map(record.headers)
    if headers.get("ce_type") != "scoring.light_changed" or headers.get("ce_tenant") != tenant:
        return False
    event = decode(record.headers, record.value)
    return event.subject == cadre and event.data.current.value == light  # type: ignore[union-attr]


async def test_october_ranking_is_published_once_with_mentors(scoring: Scoring) -> None:
    def published(records: list[Any]) -> bool:
        return len(_rankings(records, scoring.tenant)) >= 2

    await read_topic(scoring.bootstrap, SCORING_TOPIC, until=published, timeout_s=30)
    await __import__("asyncio").sleep(3)  # several more sweeps: none may publish again
    records = await read_topic(scoring.bootstrap, SCORING_TOPIC, until=published, timeout_s=30)
    rankings = _rankings(records, scoring.tenant)
    assert sorted(r.data.unit_id for r in rankings) == ["east", "west"], "once per unit"
    for ranking in rankings:
        assert ranking.data.period == "2026-10"
        assert len(ranking.data.showcased) == 1, "the top 10% of ten people"
        assert [b.mentor_id for b in ranking.data.bottom] == list(ranking.data.showcased)


def _rankings(records: list[Any], tenant: str) -> list[Any]:
    found = {}
    for record in records:
        headers = header_map(record.headers)
        if (
            headers.get("ce_type") == "scoring.ranking_published"
            and headers.get("ce_tenant") == tenant
        ):
            event = decode(record.headers, record.value)
            found[event.id] = event
    return list(found.values())


async def test_a_voided_contribution_drops_out_and_stays_explained(scoring: Scoring) -> None:
    before = await scoring.get("/v1/cadres/c004/explain", period="2026-10", dimension="discipline")
    target = next(i for i in before["items"] if i["points"] > 0)
    forbidden = await scoring.client.post(
        f"/v1/contributions/{target['event_id']}/void",
        headers=scoring.cadre(4),
        json={"reason": "x"},
    )
    assert forbidden.status_code == 403
    response = await scoring.client.post(
        f"/v1/contributions/{target['event_id']}/void",
        headers=scoring.admin(),
        json={"reason": "appeal upheld: the phone clock was wrong"},
    )
    assert response.status_code == 202, response.text

    async def voided() -> bool:
        now = await scoring.get("/v1/cadres/c004/explain", period="2026-10", dimension="discipline")
        return any(i["event_id"] == target["event_id"] and i["voided"] for i in now["items"])

    await eventually(voided, timeout_s=30, message="the void to reach the projection")
    after = await scoring.get("/v1/cadres/c004/explain", period="2026-10", dimension="discipline")
    assert after["total"] == pytest.approx(before["total"] - target["points"])
    radar_now = await scoring.get("/v1/cadres/c004/radar", period="2026-10")
    assert radar_now["dimensions"]["discipline"] == pytest.approx(after["total"])
    again = await scoring.client.post(
        f"/v1/contributions/{target['event_id']}/void",
        headers=scoring.admin(),
        json={"reason": "again"},
    )
    assert again.status_code == 409
    assert again.json()["code"] == "already-voided"
    unknown = await scoring.client.post(
        f"/v1/contributions/{uuid.uuid4()}/void", headers=scoring.admin(), json={"reason": "x"}
    )
    assert unknown.status_code == 404


async def test_a_late_event_moves_every_period_it_falls_in_and_no_other(scoring: Scoring) -> None:
    periods = ["2026-10-14", "2026-W42", "2026-10", "2026-Q4", "2026-H2", "2026"]
    untouched = ["2026-10-15", "2026-W43", "2026-09", "2026-Q3", "2026-H1"]
    before = {p: await scoring.get("/v1/cadres/c006/radar", period=p) for p in periods + untouched}
    late = late_event(
        scoring.synthetic,
        "journal.study_completed",
        6,
        datetime(2026, 10, 14, 3, tzinfo=UTC),
        study_id="late-sync",
        party_theory=False,
    )
    await scoring.publish([late])

    async def moved() -> bool:
        now = await scoring.get("/v1/cadres/c006/radar", period="2026-10-14")
        return bool(now["dimensions"]["learning"] != before["2026-10-14"]["dimensions"]["learning"])

    await eventually(moved, timeout_s=30, message="the late event to be folded")
    for period in periods:
        now = await scoring.get("/v1/cadres/c006/radar", period=period)
        assert now["dimensions"]["learning"] == pytest.approx(
            before[period]["dimensions"]["learning"] + 2
        ), period
    for period in untouched:
        assert await scoring.get("/v1/cadres/c006/radar", period=period) == before[period], period


async def test_a_new_ruleset_recomputes_and_a_broken_one_leaves_the_previous_active(
    scoring: Scoring,
) -> None:
    path = scoring.rulesets_dir / f"{scoring.tenant}.toml"
    before = await scoring.get("/v1/cadres/c000/radar", period="2026-10")
    path.write_text(
        path.read_text()
        .replace('version = "t-1"', 'version = "t-2"')
        .replace("day_present = 1.0", "day_present = 2.0")
    )

    async def active(version: str) -> bool:
        return bool((await scoring.get("/v1/ruleset"))["version"] == version)

    await eventually(lambda: active("t-2"), timeout_s=30, message="ruleset t-2 to load")

    async def recomputed() -> bool:
        now = await scoring.get("/v1/cadres/c000/radar", period="2026-10")
        return bool(now["dimensions"]["discipline"] > before["dimensions"]["discipline"])

    await eventually(recomputed, timeout_s=30, message="scores recomputed from the counters")
    scored = await scoring.get("/v1/cadres/c000/radar", period="2026-10")
    assert scored["ruleset_version"] == "t-2"

    path.write_text('version = "t-3"\n[points]\nday_present = "lots"\n')

    async def rejected() -> bool:
        return bool((await scoring.get("/v1/ruleset"))["error"] is not None)

    await eventually(rejected, timeout_s=30, message="the broken ruleset to be reported")
    status = await scoring.get("/v1/ruleset")
    assert status["version"] == "t-2", "the previous ruleset stays active"
    assert str(path) in status["error"]
    assert "points.day_present" in status["error"]
    path.write_text("version = \n")
    await eventually(
        lambda: _error_mentions(scoring, "line 1"), timeout_s=30, message="a TOML syntax error"
    )
    assert await scoring.get("/v1/cadres/c000/radar", period="2026-10") == scored


async def _error_mentions(scoring: Scoring, text: str) -> bool:
    error = (await scoring.get("/v1/ruleset"))["error"]
    return error is not None and text in error
