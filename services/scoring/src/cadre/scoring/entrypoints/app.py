from fastapi import FastAPI

from cadre.events.service import create_service_app
from cadre.scoring import __doc__ as service_doc
from cadre.scoring.settings import ScoringSettings


def create_app(settings: ScoringSettings | None = None) -> FastAPI:
    return create_service_app(
        settings or ScoringSettings(),
        title="cadre scoring",
        description=service_doc or "",
    )
