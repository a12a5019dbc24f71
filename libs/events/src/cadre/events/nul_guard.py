"""PostgreSQL cannot store a NUL character in text or jsonb, so a request carrying one would
fail deep inside a write. This middleware refuses such requests up front with a 422."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cadre.events.problems import PROBLEM_MEDIA_TYPE, problem_body

# A NUL in JSON is always the escape \u0000 (raw control characters are not valid JSON).
_JSON_NUL = re.compile(rb"\\u0000", re.IGNORECASE)


class NulGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"\x00" in scope["path"].encode() or b"\x00" in unquote_to_bytes(scope["query_string"]):
            await _refuse(send, "the URL")
            return
        content_type = dict(scope["headers"]).get(b"content-type", b"")
        if not content_type.startswith(b"application/json"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if _JSON_NUL.search(body):
            await _refuse(send, "the JSON body")
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _refuse(send: Send, where: str) -> None:
    body = json.dumps(
        problem_body(422, "nul-character", f"NUL characters are not accepted in {where}.")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
