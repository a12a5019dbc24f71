"""Webhook rules: the signature receivers check, which event types a subscription takes,
and the retry schedule. Pure."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta

SIGNATURE_HEADER = "Cadre-Signature"
DELIVERY_HEADER = "Cadre-Delivery"
EVENT_TYPE_HEADER = "Cadre-Event-Type"
ANY_TYPE = "*"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the timestamp is signed so a
    captured request cannot be replayed later with a new one."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance_s: int = 300) -> bool:
    """What a receiver does (and what the tests do): recompute and compare in constant time."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def wants(event_types: list[str], event_type: str) -> bool:
    """`journal.*` takes every journal event, `*` everything."""
    for wanted in event_types:
        if wanted in (ANY_TYPE, event_type):
            return True
        if wanted.endswith(".*") and event_type.startswith(wanted[:-1]):
            return True
    return False


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base: timedelta = timedelta(seconds=10)
    cap: timedelta = timedelta(hours=1)

    def delay_after(self, attempts: int) -> timedelta | None:
        """The wait after `attempts` failed tries, doubling each time; None: give up."""
        if attempts >= self.max_attempts:
            return None
        delay: timedelta = min(self.base * (2 ** (attempts - 1)), self.cap)
        return delay
