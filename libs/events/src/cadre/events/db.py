"""Database engines and Alembic migrations, the same way in every service."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy import TextClause, text
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine.interfaces import PoolProxiedConnection
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    InternalError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

if TYPE_CHECKING:
    from alembic.config import Config


def create_engine(database_url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    # No pre-ping: with asyncpg it is three round trips (begin, ping, rollback) on every
    # checkout, 16% of a radar read under load. After a database restart the first use of
    # each stale connection fails instead; SQLAlchemy then discards the whole pool, HTTP
    # answers 503 with Retry-After and consumers wait it out (`is_infrastructure_error`).
    return create_async_engine(database_url, pool_size=pool_size, max_overflow=max_overflow)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def autocommit_engine(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, where each statement commits on its own. That saves the BEGIN and
    ROLLBACK round trips a session otherwise wraps around every read (16% of scoring's CPU
    while dashboards poll radars, profiled). Reads see what they saw before: under READ
    COMMITTED every statement takes its own snapshot anyway."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads only, on `autocommit_engine`. Nothing written here would be
    rolled back, so writes go through `session_factory` (or are one statement)."""
    return async_sessionmaker(autocommit_engine(engine), expire_on_commit=False)


def asyncpg_dsn(database_url: str) -> str:
    """The SQLAlchemy URL as a plain libpq DSN, for asyncpg's LISTEN connection."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


def alembic_config(service_migrations: str, database_url: str) -> Config:
    """Config for one service: the shared env and spine revisions plus the service's own."""
    from alembic.config import Config  # imported when needed: a tenth of a second

    shared = files("cadre.events.alembic")
    config = Config()
    config.set_main_option("script_location", str(shared))
    config.set_main_option(
        "version_locations", f"{shared / 'spine_versions'} {files(service_migrations)}"
    )
    config.set_main_option("path_separator", "space")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def migrate(service_migrations: str, database_url: str) -> None:
    """Upgrade the database to every head: the spine's and the service's."""
    from alembic import command

    command.upgrade(alembic_config(service_migrations, database_url), "heads")


async def migrate_async(service_migrations: str, database_url: str) -> None:
    # Alembic's env runs its own event loop, so keep it off the caller's.
    await asyncio.to_thread(migrate, service_migrations, database_url)


async def copy_rows(
    session: AsyncSession, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> None:
    """Bulk-load rows with PostgreSQL's COPY, inside the session's transaction. COPY has no
    ON CONFLICT, so this is for rows that cannot exist yet; it costs PostgreSQL about a
    third less than an INSERT of the same rows, and the client half as much."""
    driver = await driver_in_transaction(session)
    await driver.copy_records_to_table(table, records=rows, columns=list(columns))


_ASYNCPG = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
# asyncpg's errors and what SQLAlchemy wraps them in (its asyncpg dialect's own mapping),
# so callers and `is_infrastructure_error` see the same errors by either path; the rest
# become a plain DBAPIError, as there.
_WRAPPED_AS: tuple[tuple[type[Exception], type[DBAPIError]], ...] = (
    (asyncpg.IntegrityConstraintViolationError, IntegrityError),
    (asyncpg.SyntaxOrAccessError, ProgrammingError),
    (asyncpg.InterfaceError, InterfaceError),
    (asyncpg.InternalServerError, InternalError),
    (asyncpg.InternalClientError, InternalError),  # a connection lost mid-statement
)


@functools.lru_cache(maxsize=256)
def positional_sql(statement: TextClause) -> tuple[str, tuple[str, ...]]:
    """The statement as SQLAlchemy would send it through asyncpg ($1, $2 and the same
    casts), and which named parameter goes where; compiled once per statement object, so
    build statements once (module constants), not per call."""
    compiled = statement.compile(dialect=_ASYNCPG)
    return compiled.string, tuple(compiled.positiontup or ())


def positional_arguments(statement: TextClause, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """`positional_sql` and `params` in the order its $1, $2 … take them."""
    sql, names = positional_sql(statement)
    return sql, [params[name] for name in names]


class DirectConnection:
    """A connection checked out of an engine's pool and used straight through asyncpg,
    without SQLAlchemy's Connection around it, whose checkout and return cost the check-in
    about 40 µs of CPU (measured in one process). Nothing begins a transaction on it, so
    each statement commits on its own. For `fetch_one` on the hottest routes."""

    def __init__(self, pooled: PoolProxiedConnection) -> None:
        driver = pooled.driver_connection
        if driver is None:  # only for a connection the pool already invalidated
            raise RuntimeError("the database connection was closed")
        self.driver: asyncpg.Connection = driver
        self._pooled = pooled

    async def invalidate(self, error: BaseException) -> None:
        """As SQLAlchemy does after a connection failed: the pool never hands it out again
        (async like `AsyncConnection.invalidate`, so callers treat both alike)."""
        self._pooled.invalidate(error)


@asynccontextmanager
async def direct_connection(engine: AsyncEngine) -> AsyncIterator[DirectConnection]:
    pooled = await engine.raw_connection()
    try:
        yield DirectConnection(pooled)
    finally:
        pooled.close()  # back to the pool; there is no transaction to roll back


async def fetch_one(
    connection: AsyncConnection | DirectConnection,
    statement: TextClause,
    params: Mapping[str, Any],
) -> Mapping[str, Any] | None:
    """The first row of a textual `statement`, or None, sent straight through asyncpg.

    For the hottest statements only: SQLAlchemy's execution and result layers cost more
    than the statement itself (about 130 µs of CPU a call against 100 µs for the whole
    round trip through asyncpg, measured). The SQL, its parameters, its casts and the
    error types are the same as through `connection.execute`. A connection whose
    transaction SQLAlchemy has not begun yet at the driver goes through SQLAlchemy, which
    begins it, so the statement is never outside the caller's transaction."""
    if isinstance(connection, DirectConnection):
        driver: asyncpg.Connection | None = connection.driver
    else:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        autocommit: bool = getattr(raw.dbapi_connection, "autocommit", False)
        if driver is None or not (autocommit or driver.is_in_transaction()):
            row = (await connection.execute(statement, params)).first()
            return None if row is None else dict(row._mapping)
    assert driver is not None
    sql, arguments = positional_arguments(statement, params)
    try:
        record: Mapping[str, Any] | None = await driver.fetchrow(sql, *arguments)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
        invalidated = driver.is_closed()
        if invalidated:  # as SQLAlchemy does: the pool must not hand it out again
            await connection.invalidate(exc)
        wrapper = next((ours for theirs, ours in _WRAPPED_AS if isinstance(exc, theirs)), None)
        raise (wrapper or DBAPIError)(
            sql, tuple(arguments), exc, connection_invalidated=invalidated
        ) from exc
    return record


async def driver_in_transaction(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under `session`, inside the session's transaction (begun at
    the driver first if SQLAlchemy has not sent its BEGIN yet), for what SQLAlchemy does
    not offer or does slowly: cursors over millions of rows, `COPY ... TO STDOUT`."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    if driver is None:  # only after the pool invalidated it, which ends the transaction anyway
        raise RuntimeError("the database connection was closed")
    if not driver.is_in_transaction():
        await connection.execute(text("SELECT 1"))  # SQLAlchemy begins lazily, at a statement
    return driver


async def lock_for_transaction(session: AsyncSession, key: str) -> None:
    """Hold a PostgreSQL advisory lock named `key` until the session's transaction ends,
    so two transactions deciding the same thing take turns."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
    )


# SQLSTATEs that say the server is going away or not back yet: class 08 (connection
# exception), admin and crash shutdown, and "the database system is shutting down".
UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def is_infrastructure_error(exc: BaseException) -> bool:
    """Errors that say the database is unreachable, not that the event is bad."""
    if isinstance(
        exc, OperationalError | InterfaceError | OSError | ConnectionError | TimeoutError
    ):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        # asyncpg reports a restarting server as a plain DBAPIError: without this, events
        # applied during a PostgreSQL restart were dead-lettered (the fault test lost one).
        return sqlstate(exc).startswith(UNAVAILABLE_SQLSTATES)
    return False


def sqlstate(exc: DBAPIError) -> str:
    """The server's SQLSTATE for the error, or "" when the driver gave none."""
    return getattr(exc.orig, "sqlstate", None) or ""
