from cadre.events.service import run_service
from cadre.notify.entrypoints.app import create_app
from cadre.notify.settings import NotifySettings

MIGRATIONS = "cadre.notify.adapters.migrations"


def run() -> None:
    run_service(NotifySettings(), MIGRATIONS, create_app)


if __name__ == "__main__":
    run()
