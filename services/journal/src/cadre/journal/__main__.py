from cadre.journal.entrypoints.main import run

run()
