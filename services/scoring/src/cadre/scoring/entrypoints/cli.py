"""`scoring`: the operations CLI. `replay` rebuilds the projection into a new generation
and switches the read pointer once it has caught up; `digest` fingerprints a generation;
`what-if` scores the counters under a draft ruleset without touching anything live."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from cadre.events.logging import configure_logging
from cadre.scoring.adapters import queries
from cadre.scoring.adapters.generations import (
    list_generations,
    live_generation,
)
from cadre.scoring.adapters.rulesets import RulesetBook
from cadre.scoring.domain.assess import assess_tenant, composite
from cadre.scoring.domain.contributions import Contribution, contributions
from cadre.scoring.domain.periods import PeriodError, period_bounds
from cadre.scoring.domain.ranking import ranked
from cadre.scoring.domain.ruleset import Ruleset, RulesetError, load_ruleset
from cadre.scoring.entrypoints.replay import DERIVE, FOLD, ReplayFailed, open_database, replay
from cadre.scoring.settings import ScoringSettings

MIGRATIONS = "cadre.scoring.adapters.migrations"
app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
console = Console(stderr=True)


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", "events")
        return Text(f"{speed:,.0f} {unit}/s" if speed else f"… {unit}/s", style="cyan")


@app.command("replay")
def replay_command(
    keep: bool = typer.Option(False, "--keep", help="leave the old generation for comparison"),
    as_json: bool = typer.Option(
        False, "--json", help="print the result as one JSON object instead of the digest"
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        max=64,
        help="processes sharing the work (default CADRE_SCORING_REPLAY_WORKERS: one per core)",
    ),
) -> None:
    """Rebuild every score from the event log into a new generation and switch to it."""
    settings = ScoringSettings()
    configure_logging("scoring-replay", "WARNING")
    chosen_workers = workers or settings.replay_workers
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        tasks = {
            FOLD: progress.add_task("fold", total=None, unit="events"),
            DERIVE: progress.add_task("derive", total=None, start=False, unit="cadres"),
        }

        def report(phase: str, done: int, total: int) -> None:
            if phase == DERIVE:
                progress.start_task(tasks[DERIVE])
            progress.update(tasks[phase], completed=done, total=max(total, done))

        try:
            result = asyncio.run(
                replay(settings, keep=keep, workers=chosen_workers, on_progress=report)
            )
        except ReplayFailed as exc:
            progress.stop()
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
    rate = result.events / result.seconds if result.seconds else 0.0
    console.print(
        f"generation {result.generation} is live (was {result.previous}); "
        f"{result.events:,} events in {result.seconds:.1f} s ({rate:,.0f}/s) with "
        f"{result.workers} worker(s): fold {result.fold_s:.1f} s, derive {result.derive_s:.1f} s,"
        f" digest, index and switch {result.digest_s:.1f} s (indexing {result.index_s:.1f} s)"
        + ("; the old generation was kept" if keep and result.previous else "")
    )
    if result.shared_cadres:
        console.print(
            f"{result.shared_cadres:,} cadre(s) had events in several workers' partitions"
            " (keyed by something other than the cadre) and were derived from the table"
        )
    if as_json:
        summary = {**asdict(result), "events_per_s": round(rate, 1)}
        typer.echo(json.dumps(summary))
    else:
        typer.echo(result.digest)


async def generation_digest(
    settings: ScoringSettings, generation: int | None, tenant: str | None
) -> tuple[int, str]:
    async with open_database(settings) as sessions, sessions() as session:
        chosen = generation if generation is not None else await live_generation(session)
        if chosen is None:
            raise typer.BadParameter("there is no generation yet: start the service first")
        return chosen, await queries.generation_digest(sessions, chosen, tenant)


@app.command("digest")
def digest_command(
    generation: int | None = typer.Option(None, help="default: the live generation"),
    tenant: str | None = typer.Option(None, help="only this tenant's projection"),
) -> None:
    """Print a stable hash of a generation: same events and ruleset, same digest."""
    chosen, fingerprint = asyncio.run(generation_digest(ScoringSettings(), generation, tenant))
    console.print(f"generation {chosen}")
    typer.echo(fingerprint)


@app.command("generations")
def generations_command() -> None:
    """List the generations and which one is live."""

    async def load() -> list[Any]:
        async with open_database(ScoringSettings()) as sessions, sessions() as session:
            return await list_generations(session)

    table = Table("generation", "status", "consumer group", "created", "switched")
    for row in asyncio.run(load()):
        table.add_row(
            str(row.generation),
            row.status,
            row.consumer_group,
            str(row.created_at)[:19],
            str(row.switched_at or "")[:19],
        )
    Console().print(table)


@dataclass
class WhatIf:
    tenant: str
    period: str
    ranking_changes: list[dict[str, Any]]
    light_changes: list[dict[str, Any]]


async def what_if(
    settings: ScoringSettings,
    draft: Ruleset,
    *,
    tenant: str | None,
    period: str,
    as_of: date,
) -> list[WhatIf]:
    """Score the live counters under `draft` and under the active ruleset, in memory."""
    rulesets = RulesetBook.load(settings.rulesets_dir)
    bounds = period_bounds(period)
    results = []
    async with open_database(settings) as sessions, sessions() as session:
        generation = await live_generation(session)
        if generation is None:
            return []
        for name in [tenant] if tenant else await queries.tenants(session, generation):
            active = rulesets.for_tenant(name)
            facts = await queries.tenant_facts(session, generation, name)
            state: dict[Any, Any] = defaultdict(tuple)
            for fact in facts:
                state[fact.event_id] = (*state[fact.event_id], fact)
            before = contributions(state, active)
            after = contributions(state, draft)
            rows = await queries.active_members(session, generation, name)
            members = [queries.as_member(row) for row in rows]
            calendar = await queries.calendar(session, generation, name)
            results.append(
                WhatIf(
                    name,
                    period,
                    _ranking_changes(rows, before, after, bounds, active, draft),
                    _light_changes(
                        assess_tenant(members, facts, before, as_of, calendar, active),
                        assess_tenant(members, facts, after, as_of, calendar, draft),
                    ),
                )
            )
    return results


def _ranking_changes(
    rows: list[Any],
    before: list[Contribution],
    after: list[Contribution],
    bounds: tuple[date, date],
    active: Ruleset,
    draft: Ruleset,
) -> list[dict[str, Any]]:
    start, end = bounds

    def unit_scores(items: list[Contribution], ruleset: Ruleset) -> dict[str, dict[str, float]]:
        per_cadre: dict[str, list[Contribution]] = defaultdict(list)
        for item in items:
            if start <= item.day <= end:
                per_cadre[item.cadre_id].append(item)
        units: dict[str, dict[str, float]] = defaultdict(dict)
        for row in rows:
            units[row.unit_id][row.cadre_id] = composite(per_cadre[row.cadre_id], ruleset.weights)
        return units

    old_units, new_units = unit_scores(before, active), unit_scores(after, draft)
    changes = []
    for unit_id in sorted(old_units):
        old_order = {c: (i + 1, v) for i, (c, v) in enumerate(ranked(old_units[unit_id]))}
        new_order = {c: (i + 1, v) for i, (c, v) in enumerate(ranked(new_units[unit_id]))}
        for cadre in sorted(old_order, key=lambda c: new_order[c][0]):
            (old_rank, old_value), (new_rank, new_value) = old_order[cadre], new_order[cadre]
            if old_rank != new_rank or old_value != new_value:
                changes.append(
                    {
                        "unit_id": unit_id,
                        "cadre_id": cadre,
                        "rank": [old_rank, new_rank],
                        "composite": [old_value, new_value],
                    }
                )
    return changes


def _light_changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "cadre_id": cadre,
            "light": [before[cadre].light.value, after[cadre].light.value],
            "reasons": list(after[cadre].reasons),
        }
        for cadre in sorted(before)
        if before[cadre].light is not after[cadre].light
    ]


@app.command("what-if")
def what_if_command(
    ruleset: Path = typer.Option(..., "--ruleset", help="the draft ruleset (TOML)"),
    tenant: str | None = typer.Option(None, help="default: every tenant"),
    period: str | None = typer.Option(None, help="the ranking period; default: this month"),
    as_of: str | None = typer.Option(None, "--as-of", help="the day lights are judged on"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
) -> None:
    """Compare rankings and lights under a draft ruleset with the live ones; nothing live
    changes."""
    settings = ScoringSettings()
    configure_logging("scoring-what-if", "WARNING")
    try:
        draft = load_ruleset(ruleset)
    except RulesetError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    day = date.fromisoformat(as_of or settings.today or date.today().isoformat())
    chosen = period or f"{day.year}-{day.month:02d}"
    try:
        period_bounds(chosen)
    except PeriodError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    results = asyncio.run(what_if(settings, draft, tenant=tenant, period=chosen, as_of=day))
    if as_json:
        typer.echo(json.dumps([r.__dict__ for r in results], indent=2))
        return
    out = Console()
    for result in results:
        out.rule(f"{result.tenant}: {draft.version} against the active ruleset, {result.period}")
        table = Table("unit", "cadre", "rank", "composite", title="ranking changes")
        for change in result.ranking_changes:
            table.add_row(
                change["unit_id"],
                change["cadre_id"],
                "{} → {}".format(*change["rank"]),
                "{:.2f} → {:.2f}".format(*change["composite"]),
            )
        out.print(table if result.ranking_changes else "no ranking changes")
        lights = Table("cadre", "light", "reasons", title=f"light changes as of {day}")
        for change in result.light_changes:
            lights.add_row(
                change["cadre_id"], "{} → {}".format(*change["light"]), "; ".join(change["reasons"])
            )
        out.print(lights if result.light_changes else "no light changes")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
