"""Ruleset files shipped with the scoring service; `default.toml` is the tenants' default."""
