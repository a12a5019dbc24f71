from cadre.directory.entrypoints.app import create_app
from cadre.directory.settings import DirectorySettings
from cadre.events.service import run_service

MIGRATIONS = "cadre.directory.adapters.migrations"


def run() -> None:
    run_service(DirectorySettings(), MIGRATIONS, create_app)


if __name__ == "__main__":
    run()
