"""Versioned scoring rulesets: a TOML file per tenant, validated on load. Pure apart from
reading the file it is given."""

from __future__ import annotations

import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cadre.events.vocabulary import Dimension, LeaderLevel
from cadre.scoring.domain.lights import DEFAULT_LIGHT_RULES, LightRules


class RulesetError(ValueError):
    """A ruleset that cannot be used; the message names the file, the line or key, and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TagRule(_Strict):
    dimension: Dimension
    points: float


class Points(_Strict):
    day_present: float = 1.0
    day_absent: float = -3.0
    check_in_flagged: float = -2.0
    journal_missed: float = -2.0
    first_entry: float = 1.0
    endorsement: float = 1.0
    endorsement_cap_per_half_year: float = Field(20.0, ge=0)
    study: float = 2.0
    branch_activity: float = 2.0
    reaction_like: dict[LeaderLevel, float] = Field(
        default_factory=lambda: {
            LeaderLevel.TOWNSHIP: 1.0,
            LeaderLevel.COUNTY: 2.0,
            LeaderLevel.CITY: 3.0,
        }
    )
    reaction_dislike: dict[LeaderLevel, float] = Field(
        default_factory=lambda: {
            LeaderLevel.TOWNSHIP: -1.0,
            LeaderLevel.COUNTY: -2.0,
            LeaderLevel.CITY: -3.0,
        }
    )
    tags: dict[str, TagRule] = Field(default_factory=dict)


class StarBand(_Strict):
    min_percentile: float = Field(ge=0, le=100)
    stars: int = Field(ge=1, le=5)


class Ruleset(_Strict):
    version: str = Field(min_length=1, max_length=64)
    timezone: str = "Asia/Shanghai"
    weights: dict[Dimension, float] = Field(default_factory=lambda: dict.fromkeys(Dimension, 0.2))
    points: Points = Field(default_factory=Points)
    stars: tuple[StarBand, ...] = ()
    lights: LightRules = DEFAULT_LIGHT_RULES

    @field_validator("weights")
    @classmethod
    def _all_dimensions_weighted(cls, weights: dict[Dimension, float]) -> dict[Dimension, float]:
        missing = [d.value for d in Dimension if d not in weights]
        if missing:
            raise ValueError(f"every dimension needs a weight; missing: {', '.join(missing)}")
        if any(w < 0 for w in weights.values()):
            raise ValueError("weights cannot be negative")
        return weights

    @model_validator(mode="after")
    def _stars_descend(self) -> Ruleset:
        bounds = [band.min_percentile for band in self.stars]
        if bounds != sorted(bounds, reverse=True):
            raise ValueError("stars: list the bands from the highest min_percentile down")
        return self

    def stars_for(self, percentile: float) -> int:
        return next((band.stars for band in self.stars if percentile >= band.min_percentile), 1)


def parse_ruleset(text: str, source: str) -> Ruleset:
    try:
        raw: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message carries the line and column
        raise RulesetError(f"{source}: not valid TOML: {exc}") from exc
    try:
        return Ruleset.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"key {'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise RulesetError(f"{source}: {problems}") from exc


def load_ruleset(path: Path) -> Ruleset:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesetError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse_ruleset(text, str(path))


def default_ruleset() -> Ruleset:
    resource = files("cadre.scoring.rulesets").joinpath("default.toml")
    return parse_ruleset(resource.read_text(encoding="utf-8"), "default.toml")
