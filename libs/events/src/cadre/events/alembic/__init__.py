"""The one Alembic environment every service migrates with.

`script_location` is this package; `version_locations` are the spine revisions here plus the
service's own `adapters/migrations` package, whose first revision builds on `spine_0001`.
"""
