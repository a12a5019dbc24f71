"""Apache Kafka 4.x in KRaft mode from the official jars.

The jars come from `KAFKA_HOME/libs` when `KAFKA_HOME` is set, otherwise Maven resolves
`org.apache.kafka:kafka_2.13` and its dependencies into a cache directory once. There is no
substitute: if neither works, starting fails with Maven's own error.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from cadre.devstack.paths import cache_dir
from cadre.devstack.processes import LocalServer, StackError

DEFAULT_KAFKA_VERSION = "4.1.1"


def kafka_version() -> str:
    return os.environ.get("CADRE_KAFKA_VERSION", DEFAULT_KAFKA_VERSION)


def resolve_kafka_libs(report: Callable[[str], None] | None = None) -> Path:
    """The directory of jars to put on the classpath, resolving them through Maven if needed."""
    kafka_home = os.environ.get("KAFKA_HOME")
    if kafka_home:
        libs = Path(kafka_home) / "libs"
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise StackError(f"KAFKA_HOME={kafka_home} has no libs/kafka_2.13-*.jar")
        return libs
    version = kafka_version()
    libs = cache_dir() / f"kafka-{version}" / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            "Maven (mvn) is not installed and KAFKA_HOME is not set: "
            "install Maven or point KAFKA_HOME at a Kafka 4.x distribution"
        )
    if libs.exists():
        shutil.rmtree(libs)
    libs.mkdir(parents=True)
    pom = libs.parent / "pom.xml"
    pom.write_text(files("cadre.devstack").joinpath("resources/kafka-pom.xml").read_text())
    if report is not None:
        report(f"Kafka: resolving the {version} jars through Maven into {libs} (first run only)")
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            f"-Dkafka.version={version}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not any(libs.glob("kafka_2.13-*.jar")):
        raise StackError(
            f"Maven could not resolve org.apache.kafka:kafka_2.13:{version}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    marker.write_text(version)
    if report is not None:
        report(f"Kafka: {len(list(libs.glob('*.jar')))} jars resolved")
    return libs


@dataclass
class KafkaServer(LocalServer):
    """One combined broker+controller node with its data under `home`."""

    controller_port: int
    heap: str = "768m"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        data_dir = self.home / "data"
        config = self.home / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={data_dir}",
                    "num.partitions=6",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=10",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    # Event topics are created with infinite retention; these are broker defaults.
                    "log.retention.hours=-1",
                    "auto.create.topics.enable=false",
                    "",
                ]
            )
        )
        return config

    def _java(self, libs: Path, main: str, *args: str, heap: str = "256m") -> list[str]:
        log4j = files("cadre.devstack").joinpath("resources/log4j2.properties")
        java = shutil.which("java") or "java"
        return [
            java,
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            f"{libs}/*",
            main,
            *args,
        ]

    def start(self, timeout_s: float = 90.0) -> None:
        libs = resolve_kafka_libs()
        self.home.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        if not (self.home / "data" / "meta.properties").exists():
            cluster_id = self.home / "cluster.id"
            if not cluster_id.exists():
                cluster_id.write_text(_kraft_cluster_id())
            result = subprocess.run(
                self._java(
                    libs,
                    "kafka.tools.StorageTool",
                    "format",
                    "--ignore-formatted",
                    # `=` form: a generated id may begin with "-".
                    f"--cluster-id={cluster_id.read_text().strip()}",
                    "-c",
                    str(config),
                ),
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise StackError(
                    f"formatting Kafka storage failed:\n{result.stdout}\n{result.stderr}"
                )
        self._launch(self._java(libs, "kafka.Kafka", str(config), heap=self.heap), timeout_s)


def _kraft_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (as StorageTool)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
