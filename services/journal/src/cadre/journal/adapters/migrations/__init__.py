"""Alembic revisions of the journal database. The first one builds on `spine_0001`."""
