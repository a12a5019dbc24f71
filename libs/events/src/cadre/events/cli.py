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
def version() -> None:
    """Print the library version."""
    typer.echo("cadre-events 0.1.0")


if __name__ == "__main__":
    app()
