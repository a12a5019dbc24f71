from cadre.attendance.entrypoints.app import create_app
from cadre.attendance.settings import AttendanceSettings
from cadre.events.service import run_service

MIGRATIONS = "cadre.attendance.adapters.migrations"


def run() -> None:
    run_service(AttendanceSettings(), MIGRATIONS, create_app)


if __name__ == "__main__":
    run()
