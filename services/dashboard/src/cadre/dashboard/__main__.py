from cadre.dashboard.entrypoints.main import run

run()
