from cadre.journal.entrypoints.app import create_app
from cadre.journal.settings import JournalSettings
from cadre.events.service import run_service

MIGRATIONS = "cadre.journal.adapters.migrations"


def run() -> None:
    run_service(JournalSettings(), MIGRATIONS, create_app)  # type: ignore[arg-type]


if __name__ == "__main__":
    run()
