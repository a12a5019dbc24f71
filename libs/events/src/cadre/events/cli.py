"""`cadre-events`: tools around the event contract."""

from __future__ import annotations

from pathlib import Path

import typer

from cadre.events.docs import write_docs

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)


@app.command()
def schemas(
    out: Path = typer.Option(Path("docs"), help="Directory for events.md and schemas/."),
) -> None:
    """Write a JSON Schema per event and the catalogue page events.md."""
    written = write_docs(out)
    typer.echo(f"wrote {len(written)} files under {out}/")


@app.command()
def relay(
    service: str = typer.Option(..., help="whose outbox: names the logs and metrics"),
    database_url: str = typer.Option(..., envvar="CADRE_RELAY_DATABASE_URL"),
    kafka_bootstrap: str = typer.Option("127.0.0.1:19092", envvar="CADRE_KAFKA_BOOTSTRAP"),
    batch_size: int = typer.Option(500, min=1, max=10_000),
) -> None:
    """Run a service's outbox relay as its own process (for a service started with
    `CADRE_<SERVICE>_RELAY_ENABLED=false`). Several may run: one leads, the rest wait."""
    import asyncio
    import signal

    from cadre.events.logging import configure_logging
    from cadre.events.relay import OutboxRelay

    configure_logging(f"{service}-relay", "INFO")
    outbox_relay = OutboxRelay(
        service=service,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        batch_size=batch_size,
    )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, outbox_relay.stop)
        await outbox_relay.run()

    asyncio.run(run())


@app.command()
def version() -> None:
    """Print the library version."""
    typer.echo("cadre-events 0.1.0")


if __name__ == "__main__":
    app()
