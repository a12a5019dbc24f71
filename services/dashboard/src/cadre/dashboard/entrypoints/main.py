import uvicorn

from cadre.dashboard.entrypoints.app import create_app
from cadre.dashboard.settings import DashboardSettings
from cadre.events.logging import configure_logging
from cadre.events.service import HTTP_KEEP_ALIVE_S


def run() -> None:
    settings = DashboardSettings()
    configure_logging(settings.service_name, settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=HTTP_KEEP_ALIVE_S,
    )


if __name__ == "__main__":
    run()
