import asyncio

from fastapi import FastAPI

from cadre.events.service import ServiceRuntime, create_service_app
from cadre.scoring import __doc__ as service_doc
from cadre.scoring.adapters.rankings import RankingCache
from cadre.scoring.adapters.rulesets import RulesetBook
from cadre.scoring.entrypoints import api
from cadre.scoring.entrypoints.jobs import (
    ScoringState,
    follow_live_generation,
    run_periodic_jobs,
)
from cadre.scoring.settings import ScoringSettings


def create_app(settings: ScoringSettings | None = None) -> FastAPI:
    settings = settings or ScoringSettings()
    rulesets = RulesetBook.load(settings.rulesets_dir)  # a broken file stops start-up here

    async def start(runtime: ServiceRuntime) -> None:
        state = ScoringState(
            settings=settings,
            sessions=runtime.sessions,
            reads=runtime.reads,
            rulesets=rulesets,
            rankings=RankingCache(runtime.redis, ttl_s=settings.ranking_ttl_s),
        )
        app.state.scoring = state
        runtime.tasks.append(
            asyncio.create_task(follow_live_generation(state), name="live-consumer")
        )
        runtime.tasks.append(asyncio.create_task(run_periodic_jobs(state), name="scoring-jobs"))

    app = create_service_app(
        settings,
        title="cadre scoring",
        description=service_doc or "",
        routers=[api.router],
        on_startup=start,
    )
    return app
