"""Half-yearly stars by percentile of the composite within a tenant. Pure."""

from __future__ import annotations

from collections.abc import Mapping

from cadre.scoring.domain.ruleset import Ruleset


def percentiles(composites: Mapping[str, float]) -> dict[str, float]:
    """Each cadre's percentile: the share of others scoring strictly lower (ties share one),
    so the best of 100 is at 99 and a lone cadre at 0."""
    values = sorted(composites.values())
    count = len(values)
    result = {}
    for cadre, value in composites.items():
        lower = next((i for i, v in enumerate(values) if v >= value), count)
        result[cadre] = 100.0 * lower / count if count else 0.0
    return result


def assign_stars(composites: Mapping[str, float], ruleset: Ruleset) -> dict[str, int]:
    return {cadre: ruleset.stars_for(p) for cadre, p in percentiles(composites).items()}
