from fastapi import FastAPI

from cadre.events.service import create_service_app
from cadre.notify import __doc__ as service_doc
from cadre.notify.settings import NotifySettings


def create_app(settings: NotifySettings | None = None) -> FastAPI:
    return create_service_app(
        settings or NotifySettings(),
        title="cadre notify",
        description=service_doc or "",
    )
