from cadre.scoring.entrypoints.app import create_app
from cadre.scoring.settings import ScoringSettings
from cadre.events.service import run_service

MIGRATIONS = "cadre.scoring.adapters.migrations"


def run() -> None:
    run_service(ScoringSettings(), MIGRATIONS, create_app)  # type: ignore[arg-type]


if __name__ == "__main__":
    run()
