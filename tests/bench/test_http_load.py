"""The benchmark's lean HTTP client: keep-alive reuse, answers as sent, failures reported."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from bench.http_load import HttpError, HttpPool
from cadre.devstack.testing import JsonHandler, LocalHttpServer, local_http_server


class _Server(LocalHttpServer):
    close_after_answer = False
    hang_up = False


class _Echo(JsonHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.server.hang_up:
            self.close_connection = True
            return
        payload = json.loads(body)
        status = 422 if payload.get("bad") else 201
        self._answer(status, {"got": payload, "auth": self.headers["Authorization"]})

    def do_GET(self) -> None:
        self._answer(200, {"path": self.path})

    def _answer(self, status: int, document: dict[str, Any]) -> None:
        closing = {"Connection": "close"} if self.server.close_after_answer else None
        self.answer(status, document, closing)


@pytest.fixture
def server() -> Iterator[_Server]:
    with local_http_server(_Server, _Echo) as httpd:
        yield httpd


async def test_answers_come_back_as_sent_over_one_kept_alive_connection(server: _Server) -> None:
    async with HttpPool(server.url, limit=4) as pool:
        for i in range(5):
            status, body = await pool.post_json("/v1/x", {"n": i}, {"Authorization": "Bearer t"})
            assert status == 201
            assert json.loads(body) == {"got": {"n": i}, "auth": "Bearer t"}
        status, body = await pool.get("/v1/y?z=1", {})
    assert (status, json.loads(body)) == (200, {"path": "/v1/y?z=1"})
    assert server.connections == 1


async def test_a_connection_idle_longer_than_the_limit_is_not_reused(server: _Server) -> None:
    """A server closes idle connections after its keep-alive timeout; one it is closing
    just as a request goes out resets that request. The pool retires them first."""
    async with HttpPool(server.url, max_idle_s=0.2) as pool:
        await pool.get("/", {})
        await pool.get("/", {})
        assert server.connections == 1
        await asyncio.sleep(0.3)
        status, _ = await pool.get("/", {})
    assert status == 200
    assert server.connections == 2


async def test_a_refusal_keeps_its_status_and_body(server: _Server) -> None:
    async with HttpPool(server.url) as pool:
        status, body = await pool.post_json("/v1/x", {"bad": True}, {"Authorization": "-"})
    assert status == 422
    assert json.loads(body)["got"] == {"bad": True}


async def test_a_server_that_closes_after_each_answer_gets_a_new_connection(
    server: _Server,
) -> None:
    server.close_after_answer = True
    async with HttpPool(server.url) as pool:
        for _ in range(3):
            status, _ = await pool.get("/", {})
            assert status == 200
    assert server.connections == 3


async def test_a_hang_up_before_the_answer_is_an_error(server: _Server) -> None:
    server.hang_up = True
    async with HttpPool(server.url) as pool:
        with pytest.raises(HttpError):
            await pool.post_json("/v1/x", {}, {"Authorization": "-"})


async def test_only_plain_http_urls_are_accepted() -> None:
    with pytest.raises(ValueError, match="plain http"):
        HttpPool("https://example.invalid")
