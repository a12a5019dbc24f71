"""The local stack's ports (DESIGN section 9), each overridable by environment variable."""

from __future__ import annotations

import os
import socket


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def kafka_port() -> int:
    return _port("CADRE_KAFKA_PORT", 19092)


def kafka_controller_port() -> int:
    return _port("CADRE_KAFKA_CONTROLLER_PORT", kafka_port() + 1)


def postgres_port() -> int:
    return _port("CADRE_PG_PORT", 15432)


def redis_port() -> int:
    return _port("CADRE_REDIS_PORT", 16379)


SERVICE_PORTS: dict[str, int] = {
    "dashboard": 8000,
    "directory": 8001,
    "attendance": 8002,
    "journal": 8003,
    "scoring": 8004,
    "notify": 8005,
}


def service_port(service: str) -> int:
    return _port(f"CADRE_{service.upper()}_HTTP_PORT", SERVICE_PORTS[service])


def free_port() -> int:
    """A TCP port nothing listens on right now (for processes a test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
