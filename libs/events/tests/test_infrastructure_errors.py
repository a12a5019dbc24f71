"""Which failures the consumer waits out (the database is away) and which are the event's
fault (retried, then dead-lettered). A restarting PostgreSQL must be the former, or events
applied during the restart are lost to the dead-letter topic. HTTP answers the former with
a retryable 503, not a 500."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from cadre.events.db import is_infrastructure_error
from cadre.events.problems import install_problem_handlers


class DriverError(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    "sqlstate",
    ["57P03", "57P01", "57P02", "08006", "08001"],
    ids=["shutting-down", "admin-shutdown", "crash-shutdown", "connection-failure", "no-connect"],
)
def test_a_server_going_away_is_waited_out(sqlstate: str) -> None:
    assert is_infrastructure_error(DBAPIError("INSERT", {}, DriverError(sqlstate)))


@pytest.mark.parametrize("sqlstate", ["23505", "22P02", None])
def test_an_error_in_the_data_is_the_event_s_fault(sqlstate: str | None) -> None:
    assert not is_infrastructure_error(DBAPIError("INSERT", {}, DriverError(sqlstate)))


def test_a_refused_connection_is_waited_out_and_a_bug_is_not() -> None:
    assert is_infrastructure_error(ConnectionRefusedError())
    assert not is_infrastructure_error(ValueError("bad payload"))


async def test_an_http_request_meeting_an_absent_database_gets_503_with_retry_after() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/restarting")
    async def restarting() -> None:
        raise DBAPIError("SELECT", {}, DriverError("57P01"))

    @app.get("/bug")
    async def bug() -> None:
        raise ValueError("a bug, not the database")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        away = await client.get("/restarting")
        broken = await client.get("/bug")
    assert away.status_code == 503
    assert away.headers["retry-after"] == "1"
    assert away.headers["content-type"] == "application/problem+json"
    assert away.json()["code"] == "database-unavailable"
    assert broken.status_code == 500
    assert broken.json()["code"] == "internal-error"
