from cadre.attendance.entrypoints.main import run

run()
