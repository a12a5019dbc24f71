"""Alembic revisions of the attendance database. The first one builds on `spine_0001`."""
