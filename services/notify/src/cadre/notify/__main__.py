from cadre.notify.entrypoints.main import run

run()
