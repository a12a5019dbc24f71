"""Services on the database's machine can reach PostgreSQL over its Unix-domain socket."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa

from cadre.devstack.infra import Infra
from cadre.devstack.pytest_plugin import DatabaseFactory
from cadre.events.db import asyncpg_dsn, create_engine

pytestmark = [pytest.mark.integration]


async def test_the_local_url_reaches_the_database_over_its_socket_through_both_drivers(
    infra: Infra, make_database: DatabaseFactory
) -> None:
    database = (await make_database("socket")).rsplit("/", 1)[-1]
    url = infra.pg_local_url(database)
    assert "127.0.0.1" not in url
    assert "?host=/" in url

    engine = create_engine(url)  # what a service's pool and migrations use
    try:
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    sa.text("SELECT current_database(), inet_server_addr() IS NULL")
                )
            ).one()
    finally:
        await engine.dispose()
    assert row == (database, True)  # no server address: not a TCP connection

    relay = await asyncpg.connect(asyncpg_dsn(url))  # what the relay's LISTEN connection uses
    try:
        assert await relay.fetchval("SELECT inet_server_addr() IS NULL") is True
    finally:
        await relay.close()


def test_the_local_url_is_the_tcp_one_when_the_server_has_no_socket_there(tmp_path: Path) -> None:
    elsewhere = Infra(home=tmp_path)  # nothing started there: no socket file
    assert elsewhere.pg_local_url("cadre_x") == elsewhere.pg_url("cadre_x")
    deep = Infra(home=tmp_path / ("d" * 120))  # too long a path for a socket
    assert deep.pg_local_url("cadre_x") == deep.pg_url("cadre_x")
