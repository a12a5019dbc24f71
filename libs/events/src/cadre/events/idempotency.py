"""The `Idempotency-Key` middleware: a repeated request gets the first answer back.

The first request with a key claims it in PostgreSQL before it runs; the answer is stored
when it completes. A repeat with the same body replays the stored answer (with an
`Idempotent-Replayed: true` header) and runs nothing. The same key with a different body is
a client error (422); a repeat while the first is still running gets 409. Answers of 5xx
release the key so the client may retry. Keys are scoped to the caller's credentials and
the method and path, and expire after a configurable time. A claim left unfinished by a
crashed process blocks the key only for `in_progress_lease`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cadre.events.problems import PROBLEM_MEDIA_TYPE, problem_body

HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 255
_UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_REPLAYED_HEADERS = {"content-type", "location", "etag"}


@dataclass(frozen=True)
class StoredResponse:
    request_hash: str
    status_code: int | None
    response_headers: list[list[str]] | None
    response_body: bytes | None


class IdempotencyMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        sessions: async_sessionmaker[AsyncSession] | None = None,
        ttl: timedelta = timedelta(hours=24),
        in_progress_lease: timedelta = timedelta(minutes=5),
    ) -> None:
        """Without `sessions`, the app's `state.sessions` is used (set up by its lifespan)."""
        self.app = app
        self._sessions = sessions
        self.ttl = ttl
        self.in_progress_lease = in_progress_lease

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw_key = headers.get(HEADER)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1").strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            await _send_problem(
                send,
                400,
                "bad-idempotency-key",
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.",
            )
            return

        body = await _read_body(receive)
        credentials = headers.get(b"authorization", b"")
        scope_id = hashlib.sha256(
            credentials + b"\n" + scope["method"].encode() + b" " + scope["path"].encode()
        ).hexdigest()
        request_hash = hashlib.sha256(
            scope.get("query_string", b"") + b"\n" + _comparable_body(headers, body)
        ).hexdigest()

        stored = await self._claim(scope, scope_id, key, request_hash)
        if stored is not None:
            if stored.request_hash != request_hash:
                await _send_problem(
                    send,
                    422,
                    "idempotency-key-reused",
                    "This Idempotency-Key was used with a different request body.",
                )
            elif stored.status_code is None:
                await _send_problem(
                    send,
                    409,
                    "idempotency-key-in-progress",
                    "A request with this Idempotency-Key is still being processed.",
                )
            else:
                replay_headers = [
                    (n.encode(), v.encode()) for n, v in stored.response_headers or []
                ]
                replay_headers.append((b"idempotent-replayed", b"true"))
                await send(
                    {
                        "type": "http.response.start",
                        "status": stored.status_code,
                        "headers": replay_headers,
                    }
                )
                await send({"type": "http.response.body", "body": stored.response_body or b""})
            return

        status = 500
        response_headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        async def replay_receive() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.decode("latin-1").lower() in _REPLAYED_HEADERS:
                        response_headers.append((name.decode("latin-1"), value.decode("latin-1")))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_receive, capture_send)
        finally:
            await self._complete(scope, scope_id, key, status, response_headers, b"".join(chunks))

    def _sessions_for(self, scope: Scope) -> async_sessionmaker[AsyncSession]:
        if self._sessions is not None:
            return self._sessions
        sessions: async_sessionmaker[AsyncSession] = scope["app"].state.sessions
        return sessions

    async def _claim(
        self, scope: Scope, scope_id: str, key: str, request_hash: str
    ) -> StoredResponse | None:
        now = datetime.now(UTC)
        async with self._sessions_for(scope)() as session:
            # One statement, outside a transaction: this runs before every keyed request,
            # and the three statements in a transaction it was cost as much as a check-in.
            connection = await session.connection(execution_options=AUTOCOMMIT)
            claimed = await connection.execute(
                _CLAIM,
                {
                    "scope": scope_id,
                    "key": key,
                    "request_hash": request_hash,
                    "expired_before": now - self.ttl,
                    "abandoned_before": now - self.in_progress_lease,
                },
            )
            if claimed.first() is not None:
                return None
            existing = await connection.execute(_STORED, {"scope": scope_id, "key": key})
            row = existing.first()
            if row is None:  # completed with a 5xx and released in between: claim afresh
                return await self._claim(scope, scope_id, key, request_hash)
            return StoredResponse(row[0], row[1], row[2], row[3])

    async def _complete(
        self,
        scope: Scope,
        scope_id: str,
        key: str,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> None:
        async with self._sessions_for(scope)() as session:
            connection = await session.connection(execution_options=AUTOCOMMIT)
            if status >= 500:
                await connection.execute(_RELEASE, {"scope": scope_id, "key": key})
            else:
                await connection.execute(
                    _COMPLETE,
                    {
                        "scope": scope_id,
                        "key": key,
                        "status_code": status,
                        "response_headers": json.dumps([list(h) for h in headers]),
                        "response_body": body,
                        "completed_at": datetime.now(UTC),
                    },
                )


AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}
# A fresh key is inserted; a key whose answer expired, or whose request never finished
# (its process died) once the lease has run out, is taken over as if fresh. Any other
# existing key returns no row, and its stored state decides.
_CLAIM = sa.text(
    """
    INSERT INTO idempotency_keys AS k (scope, key, request_hash)
    VALUES (:scope, :key, :request_hash)
    ON CONFLICT (scope, key) DO UPDATE
        SET request_hash = EXCLUDED.request_hash, created_at = now(), status_code = NULL,
            response_headers = NULL, response_body = NULL, completed_at = NULL
        WHERE k.created_at < :expired_before
           OR (k.status_code IS NULL AND k.created_at < :abandoned_before)
    RETURNING k.key
    """
).bindparams(
    sa.bindparam("expired_before", type_=sa.DateTime(timezone=True)),
    sa.bindparam("abandoned_before", type_=sa.DateTime(timezone=True)),
)
_STORED = sa.text(
    "SELECT request_hash, status_code, response_headers, response_body"
    " FROM idempotency_keys WHERE scope = :scope AND key = :key"
).columns(
    sa.column("request_hash", sa.Text),
    sa.column("status_code", sa.Integer),
    sa.column("response_headers", pg.JSONB),
    sa.column("response_body", sa.LargeBinary),
)
_RELEASE = sa.text("DELETE FROM idempotency_keys WHERE scope = :scope AND key = :key")
_COMPLETE = sa.text(
    "UPDATE idempotency_keys SET status_code = :status_code,"
    " response_headers = CAST(:response_headers AS jsonb), response_body = :response_body,"
    " completed_at = :completed_at WHERE scope = :scope AND key = :key"
).bindparams(
    sa.bindparam("response_body", type_=sa.LargeBinary),
    sa.bindparam("completed_at", type_=sa.DateTime(timezone=True)),
)


def _comparable_body(headers: dict[bytes, bytes], body: bytes) -> bytes:
    """The body as it matters for "the same request": a client retrying a multipart upload
    picks a fresh boundary, so the boundary is replaced by a fixed marker."""
    content_type = headers.get(b"content-type", b"")
    if not content_type.lower().startswith(b"multipart/"):
        return body
    for parameter in content_type.split(b";")[1:]:
        name, _, value = parameter.strip().partition(b"=")
        if name.lower() == b"boundary" and value:
            return body.replace(b"--" + value.strip(b'"'), b"--<boundary>")
    return body


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send_problem(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps(problem_body(status, code, detail)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
