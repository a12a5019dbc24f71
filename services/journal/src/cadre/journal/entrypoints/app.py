from fastapi import FastAPI

from cadre.events.service import create_service_app
from cadre.journal import __doc__ as service_doc
from cadre.journal.settings import JournalSettings


def create_app(settings: JournalSettings | None = None) -> FastAPI:
    return create_service_app(
        settings or JournalSettings(),
        title="cadre journal",
        description=service_doc or "",
    )
