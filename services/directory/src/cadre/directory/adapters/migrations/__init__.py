"""Alembic revisions of the directory database. The first one builds on `spine_0001`."""
