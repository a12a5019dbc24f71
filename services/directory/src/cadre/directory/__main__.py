from cadre.directory.entrypoints.main import run

run()
