"""docker-compose.yml is valid Compose and matches the local stack.

No Docker engine runs here, so instead of `docker compose config` the file is checked with
the `compose-spec` parser (a spec-compliant, strict Compose model) after YAML merge keys are
resolved, as Compose itself does, plus the cross-references that a schema cannot express.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_spec import PyCompose

from cadre.devstack.infra import PROCESSES, SERVICES
from cadre.devstack.ports import SERVICE_PORTS
from cadre.events.topics import ALL_DLQ_TOPICS, ALL_EVENT_TOPICS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"


def _resolved(text: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(text)
    return document


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _resolved(COMPOSE_FILE.read_text())


def test_the_file_is_valid_compose(compose: dict[str, Any]) -> None:
    parsed = PyCompose.from_json(json.dumps(compose))
    assert set(parsed.service_names()) == {"kafka", "kafka-init", "postgres", "redis", *PROCESSES}


@pytest.mark.parametrize(
    ("mutation", "problem"),
    [
        (lambda d: d["services"]["redis"].update(restart_policy="always"), "does not start with"),
        (lambda d: d["services"]["kafka"]["healthcheck"].update(interval="soon"), "duration"),
        (lambda d: d["services"]["postgres"].update(ports=["not-a-port"]), "port"),
    ],
)
def test_the_validator_rejects_broken_files(
    compose: dict[str, Any], mutation: Any, problem: str
) -> None:
    broken = json.loads(json.dumps(compose))
    mutation(broken)
    with pytest.raises(ValueError, match=problem):
        PyCompose.from_json(json.dumps(broken))


def test_every_dependency_is_a_defined_service(compose: dict[str, Any]) -> None:
    defined = set(compose["services"])
    for name, service in compose["services"].items():
        for dependency in service.get("depends_on", {}):
            assert dependency in defined, f"{name} depends on undefined {dependency}"


def test_infrastructure_uses_the_official_kafka_image_in_kraft_mode(
    compose: dict[str, Any],
) -> None:
    kafka = compose["services"]["kafka"]
    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", kafka["image"])
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "healthcheck" in kafka
    assert compose["services"]["postgres"]["image"].startswith("postgres:")
    assert compose["services"]["redis"]["image"].startswith("redis:7")


def test_the_init_job_creates_every_event_topic_with_infinite_retention(
    compose: dict[str, Any],
) -> None:
    script = " ".join(compose["services"]["kafka-init"]["command"])
    listed = re.search(r"for topic in (.*?); do", script)
    assert listed is not None
    assert set(listed.group(1).split()) == set(ALL_EVENT_TOPICS) | set(ALL_DLQ_TOPICS)
    assert "retention.ms=-1" in script
    assert "retention.bytes=-1" in script


def test_each_database_is_created_for_its_service() -> None:
    sql = (ROOT / "infra/compose/postgres-init.sql").read_text()
    assert set(re.findall(r"CREATE DATABASE (\w+);", sql)) == {f"cadre_{s}" for s in SERVICES}


@pytest.mark.parametrize("name", PROCESSES)
def test_each_service_has_a_container_with_health_check_and_its_port(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    port = SERVICE_PORTS[name]
    assert service["build"] == "."
    assert service["command"] == ["python", "-m", f"cadre.{name}"]
    assert f"{port}:{port}" in service["ports"]
    assert service["environment"][f"CADRE_{name.upper()}_HTTP_PORT"] == str(port)
    assert service["environment"]["CADRE_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert f"127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"])
    for infra in ("postgres", "redis", "kafka-init"):
        assert infra in service["depends_on"]


def test_the_dockerfile_installs_the_locked_workspace() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "uv sync --frozen --no-dev --all-packages" in dockerfile
    assert (ROOT / "uv.lock").exists()
