from cadre.scoring.entrypoints.main import run

run()
