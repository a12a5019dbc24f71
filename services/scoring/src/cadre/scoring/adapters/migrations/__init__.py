"""Alembic revisions of the scoring database. The first one builds on `spine_0001`."""
