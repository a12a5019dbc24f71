"""docs/events.md and docs/schemas/ are generated from the code and must stay in sync."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from cadre.events.catalogue import EVENT_TYPES
from cadre.events.docs import render_catalogue, render_schemas
from cadre.events.samples import sample_event

DOCS = Path(__file__).resolve().parents[3] / "docs"


def test_catalogue_page_is_up_to_date() -> None:
    assert (DOCS / "events.md").read_text(encoding="utf-8") == render_catalogue(), (
        "run `make schemas`"
    )


def test_json_schemas_are_up_to_date() -> None:
    rendered = render_schemas()
    on_disk = {f"schemas/{p.name}" for p in (DOCS / "schemas").glob("*.json")}
    assert on_disk == set(rendered), "run `make schemas`"
    for relative, text in rendered.items():
        assert (DOCS / relative).read_text(encoding="utf-8") == text, (
            f"{relative} is stale: run `make schemas`"
        )


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_each_schema_accepts_its_sample_and_rejects_a_foreign_type(event_type: str) -> None:
    schema = json.loads(render_schemas()[f"schemas/{event_type}.json"])
    jsonschema.Draft202012Validator.check_schema(schema)
    document = sample_event(event_type).model_dump(mode="json")
    jsonschema.validate(document, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**document, "type": "other.thing"}, schema)
