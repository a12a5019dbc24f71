from fastapi import FastAPI

from cadre.directory import __doc__ as service_doc
from cadre.directory.settings import DirectorySettings
from cadre.events.service import create_service_app


def create_app(settings: DirectorySettings | None = None) -> FastAPI:
    return create_service_app(
        settings or DirectorySettings(),
        title="cadre directory",
        description=service_doc or "",
    )
