"""Which failures the consumer waits out (the database is away) and which are the event's
fault (retried, then dead-lettered). A restarting PostgreSQL must be the former, or events
applied during the restart are lost to the dead-letter topic."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from cadre.events.consumer import is_infrastructure_error


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
