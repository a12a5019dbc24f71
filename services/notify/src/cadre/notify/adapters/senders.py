"""The two outward channels: email over SMTP and signed webhook POSTs. Each send returns an
outcome; it never raises for a failure of the other side."""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

import aiosmtplib
import httpx

from cadre.notify.domain.webhooks import DELIVERY_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, sign


@dataclass(frozen=True)
class Outcome:
    ok: bool
    duration_ms: float
    status_code: int | None = None
    error: str | None = None
    permanent: bool = False  # no point retrying (for example a refused address)


class Sender(Protocol):
    async def __call__(self, row: Any, secret: str | None) -> Outcome: ...


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    use_tls: bool = False
    timeout_s: float = 20.0


class EmailSender:
    def __init__(self, smtp: SmtpSettings) -> None:
        self.smtp = smtp

    def message(self, row: Any) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.smtp.sender
        message["To"] = row.target
        message["Subject"] = row.subject
        message["Date"] = formatdate(localtime=False)
        # Stable per delivery: a redelivered copy is recognisably the same message.
        message["Message-ID"] = make_msgid(idstring=str(row.delivery_id), domain="cadre.notify")
        message["X-Cadre-Delivery"] = str(row.delivery_id)
        message["X-Cadre-Kind"] = row.event_type
        message.set_content(row.payload, charset="utf-8")
        return message

    async def __call__(self, row: Any, secret: str | None) -> Outcome:
        started = time.perf_counter()
        try:
            await aiosmtplib.send(
                self.message(row),
                hostname=self.smtp.host,
                port=self.smtp.port,
                username=self.smtp.username,
                password=self.smtp.password,
                start_tls=self.smtp.starttls,
                use_tls=self.smtp.use_tls,
                timeout=self.smtp.timeout_s,
            )
        except aiosmtplib.SMTPResponseException as exc:
            return Outcome(
                False,
                _ms(started),
                exc.code,
                f"SMTP {exc.code}: {exc.message}"[:500],
                permanent=500 <= exc.code < 600,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Outcome(False, _ms(started), None, repr(exc)[:500])
        return Outcome(True, _ms(started), 250)


class WebhookSender:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def __call__(self, row: Any, secret: str | None) -> Outcome:
        body = row.payload.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "cadre-notify",
            DELIVERY_HEADER: str(row.delivery_id),
            EVENT_TYPE_HEADER: row.event_type,
            SIGNATURE_HEADER: sign(secret or "", int(time.time()), body),
        }
        started = time.perf_counter()
        try:
            response = await self.client.post(row.target, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Outcome(False, _ms(started), None, f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= response.status_code < 300:
            return Outcome(True, _ms(started), response.status_code)
        return Outcome(
            False,
            _ms(started),
            response.status_code,
            f"HTTP {response.status_code}: {response.text[:200]}",
        )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
