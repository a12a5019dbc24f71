"""The scoring service: Per-cadre projections: counters, five-dimension radar, rankings,
stars, warning lights, explanations."""
