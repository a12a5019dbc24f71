from cadre.events.service import run_service
from cadre.journal.entrypoints.app import create_app
from cadre.journal.settings import JournalSettings

MIGRATIONS = "cadre.journal.adapters.migrations"


def run() -> None:
    run_service(JournalSettings(), MIGRATIONS, create_app)


if __name__ == "__main__":
    run()
