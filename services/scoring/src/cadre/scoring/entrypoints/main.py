from cadre.events.service import run_service
from cadre.scoring.entrypoints.app import create_app
from cadre.scoring.settings import ScoringSettings

MIGRATIONS = "cadre.scoring.adapters.migrations"


def run() -> None:
    run_service(ScoringSettings(), MIGRATIONS, create_app)


if __name__ == "__main__":
    run()
