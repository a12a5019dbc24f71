"""A lean HTTP/1.1 client for load generation: keep-alive connections on asyncio protocols,
responses parsed by httptools (uvicorn's C parser).

The load generator shares the two cores it measures, so its own cost per request is taken
from the service's capacity. aiohttp spent about 190 µs of CPU a check-in (profiled in the
ingest run); this client sends prebuilt request bytes and parses with C code, with no
cookie jar, no header objects and no per-request task of its own.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import Any, cast
from urllib.parse import urlsplit

import httptools

from cadre.events.service import POOLED_CONNECTION_MAX_IDLE_S

# Under the services' keep-alive timeout. A request sent on a connection the server is
# closing for idleness at that moment is reset (16 of 90,000 in one ingest run). The pool
# grows to its limit in a burst, and the connections it then leaves idle time out.
MAX_IDLE_S = float(POOLED_CONNECTION_MAX_IDLE_S)


class HttpError(Exception):
    """The connection failed or closed before a whole response arrived."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection, one request at a time (as a gateway's pooled connection)."""

    def __init__(self, pool: HttpPool) -> None:
        self._pool = pool
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[tuple[int, bytes]] | None = None
        self._body: list[bytes] = []
        self._keep_alive = True
        self.closed = False
        self.idle_since = 0.0  # loop time it was last put back in the pool

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"unparseable response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(HttpError(f"connection lost: {exc!r}"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        answer, self._answer = self._answer, None
        self._keep_alive = self._parser.should_keep_alive()
        status, body = self._parser.get_status_code(), b"".join(self._body)
        self._body = []
        if not self._keep_alive:
            self.close()
        if answer is not None and not answer.done():
            answer.set_result((status, body))

    def send(self, request: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self._transport is not None
        assert self._answer is None, "one request at a time on a connection"
        self._answer = self._pool.loop.create_future()
        self._transport.write(request)
        return self._answer

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _fail(self, error: HttpError) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(error)
        self.close()


class HttpPool:
    """Up to `limit` keep-alive connections to one origin; a request waits for a free one."""

    def __init__(
        self,
        base_url: str,
        limit: int = 256,
        timeout_s: float = 30,
        max_idle_s: float = MAX_IDLE_S,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"plain http://host:port URLs only, not {base_url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self._host_header = f"Host: {parts.netloc}\r\n".encode()
        self.loop = asyncio.get_running_loop()
        self._timeout_s = timeout_s
        self._max_idle_s = max_idle_s
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(limit)  # at most `limit` connections in use

    def request_bytes(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None = None
    ) -> bytes:
        """The request as sent: build it once and reuse it when nothing varies."""
        head = [f"{method} {path} HTTP/1.1\r\n".encode(), self._host_header]
        head += [f"{name}: {value}\r\n".encode() for name, value in headers.items()]
        if body is not None:
            head.append(f"Content-Length: {len(body)}\r\n".encode())
        head.append(b"\r\n")
        return b"".join(head) + (body or b"")

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Send prebuilt request bytes; the status and the whole body of the answer."""
        async with self._slots:
            connection = await self._checkout()
            try:
                async with asyncio.timeout(self._timeout_s):
                    status, body = await connection.send(request)
            except BaseException:
                connection.close()
                raise
            finally:
                if not connection.closed:
                    connection.idle_since = self.loop.time()
                    self._idle.append(connection)
            return status, body

    async def post_json(
        self, path: str, payload: Any, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        body = json.dumps(payload, separators=(",", ":")).encode()
        request = self.request_bytes(
            "POST", path, {**headers, "Content-Type": "application/json"}, body
        )
        return await self.send(request)

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        return await self.send(self.request_bytes("GET", path, headers))

    async def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    async def __aenter__(self) -> HttpPool:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _checkout(self) -> _Connection:
        # The least recently used are on the left: close those the server may be closing.
        stale_before = self.loop.time() - self._max_idle_s
        while self._idle and self._idle[0].idle_since < stale_before:
            self._idle.popleft().close()
        while self._idle:  # the most recently used first: the server may have closed one
            connection = self._idle.pop()
            if not connection.closed:
                return connection
        _, protocol = await self.loop.create_connection(
            lambda: _Connection(self), self.host, self.port
        )
        return protocol
