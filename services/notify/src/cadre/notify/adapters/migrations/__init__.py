"""Alembic revisions of the notify database. The first one builds on `spine_0001`."""
