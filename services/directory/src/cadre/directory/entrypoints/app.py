from fastapi import FastAPI

from cadre.directory import __doc__ as service_doc
from cadre.directory.entrypoints.api import public, router
from cadre.directory.entrypoints.demo import load_demo_if_wanted
from cadre.directory.settings import DirectorySettings
from cadre.events.service import create_service_app


def create_app(settings: DirectorySettings | None = None) -> FastAPI:
    settings = settings or DirectorySettings()
    return create_service_app(
        settings,
        title="cadre directory",
        description=service_doc or "",
        routers=[router],
        root_routers=[public],
        on_startup=load_demo_if_wanted(settings),
    )
