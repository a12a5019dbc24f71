"""`cadre-stack`: run the local platform on real servers.

cadre-stack up       everything, in the foreground, until Ctrl-C (what `make up` runs)
cadre-stack infra    only Kafka, PostgreSQL and Redis, in the foreground
cadre-stack status   what is listening on the stack's ports
"""

from __future__ import annotations

import signal
import time

import typer
from rich.console import Console
from rich.table import Table

from cadre.devstack import ports
from cadre.devstack.demo_activity import seed_demo_activity
from cadre.devstack.infra import PROCESSES, Infra
from cadre.devstack.kafka import resolve_kafka_libs
from cadre.devstack.paths import stack_dir
from cadre.devstack.processes import StackError, port_open
from cadre.devstack.supervisor import SupervisedService, Supervisor, service_command, service_env

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
console = Console()


def _say(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}", highlight=False)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM stop the stack cleanly, even where SIGINT arrives ignored (a process
    started in the background by a shell inherits SIGINT as ignored)."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


def _start_infra() -> Infra:
    infra = Infra()
    try:
        infra.start(_say)
    except StackError as exc:
        infra.stop(_say)
        console.print(f"[red]cannot start the stack:[/red] {exc}")
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        infra.stop(_say)  # interrupted while starting: stop what already runs
        raise typer.Exit(130) from None
    return infra


@app.command()
def up(
    services: str = typer.Option(",".join(PROCESSES), help="Comma-separated services to run."),
) -> None:
    """Start Kafka, PostgreSQL, Redis and every service; Ctrl-C stops all of it."""
    chosen = [s.strip() for s in services.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(PROCESSES))
    if unknown:
        console.print(
            f"[red]unknown services:[/red] {', '.join(unknown)}; known: {', '.join(PROCESSES)}"
        )
        raise typer.Exit(2)
    _stop_on_signals()
    infra = _start_infra()
    logs = stack_dir() / "logs"
    supervised = [
        SupervisedService(
            name=s,
            command=service_command(s),
            port=ports.service_port(s),
            log_file=logs / f"{s}.log",
            env=service_env(s, ports.service_port(s)),
        )
        for s in chosen
    ]
    busy = [s for s in supervised if port_open(s.port)]
    if busy:
        console.print(
            "[red]ports already in use:[/red] "
            + ", ".join(f"{s.name} {s.port}" for s in busy)
            + " (another `make up`? set CADRE_<SERVICE>_HTTP_PORT to move one)"
        )
        infra.stop(_say)
        raise typer.Exit(1)
    _print_urls(supervised)
    urls = {s.name: s.url for s in supervised}
    seed = None
    if {"directory", "attendance", "journal"} <= set(urls):

        def seed() -> None:
            _seed_quietly(urls)

    try:
        Supervisor(supervised, _say, on_all_ready=seed).run()
    finally:
        infra.stop(_say)
        _say("stopped")


def _seed_quietly(urls: dict[str, str]) -> None:
    try:
        seed_demo_activity(urls, report=_say)
    except Exception as exc:  # the stack runs on without demo activity
        _say(f"[yellow]demo activity not loaded:[/yellow] {exc!r} (try `cadre-stack seed`)")


@app.command()
def seed(tenant: str = typer.Option("demo", help="The tenant the demo was loaded into.")) -> None:
    """Post today's demo activity (check-ins, journals, likes, endorsements, a spoofer)
    through the running services' APIs; `make up` does this once the services are ready."""
    urls = {s: f"http://127.0.0.1:{ports.service_port(s)}" for s in PROCESSES}
    seed_demo_activity(urls, tenant, report=_say)


def _print_urls(services: list[SupervisedService]) -> None:
    table = Table(title="cadre platform (Ctrl-C stops everything)")
    table.add_column("what")
    table.add_column("where")
    for service in services:
        table.add_row(service.name, f"{service.url}  (docs {service.url}/docs)")
    table.add_row("Kafka", f"127.0.0.1:{ports.kafka_port()}")
    table.add_row(
        "PostgreSQL", f"postgresql://cadre@127.0.0.1:{ports.postgres_port()}/cadre_<service>"
    )
    table.add_row("Redis", f"redis://127.0.0.1:{ports.redis_port()}/0")
    table.add_row("data and logs", str(stack_dir()))
    console.print(table)
    console.print(
        f"Dashboard: http://127.0.0.1:{ports.service_port('dashboard')} "
        "(log in as orgadmin / demo). "
        "Demo tenant `demo`, password `demo` for every login: orgadmin, city.leader, "
        "county.leader, township.leader, cadre1 … cadre20, super.admin, senior.admin, "
        "junior.admin. Get a token: curl -X POST http://127.0.0.1:8001/v1/auth/token "
        '-H \'content-type: application/json\' -d \'{"username": "cadre1", "password": "demo"}\''
    )


@app.command()
def infra() -> None:
    """Start only Kafka, PostgreSQL and Redis and keep them running until Ctrl-C."""
    _stop_on_signals()
    servers = _start_infra()
    _say("infrastructure running; Ctrl-C stops what this command started")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        servers.stop(_say)


@app.command()
def status() -> None:
    """Show which of the stack's ports answer."""
    table = Table()
    table.add_column("component")
    table.add_column("port")
    table.add_column("state")
    rows = [
        ("Kafka", ports.kafka_port()),
        ("PostgreSQL", ports.postgres_port()),
        ("Redis", ports.redis_port()),
    ] + [(s, ports.service_port(s)) for s in PROCESSES]
    for name, port in rows:
        table.add_row(
            name, str(port), "[green]up[/green]" if port_open(port) else "[red]down[/red]"
        )
    console.print(table)


@app.command("kafka-libs")
def kafka_libs() -> None:
    """Resolve the Kafka jars (through Maven unless KAFKA_HOME is set) and print where they are."""
    try:
        console.print(str(resolve_kafka_libs(_say)))
    except StackError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc


if __name__ == "__main__":
    app()
