"""The field table is the one declaration of a metadata field: brief, validation, ledger, tags and sheets
all follow it."""

from __future__ import annotations

from tasks.catalog.ledger import COLUMNS, LedgerRecord
from tasks.catalog.sheets import SHEETS
from tasks.delivery.place import tag_values
from tasks.delivery.tagging import FIELD_ATTRIBUTES, TAGS
from tasks.intake.brief import KNOWN_COLUMNS
from tasks.intake.fields import METADATA_FIELDS
from tasks.intake.validate import TABLE_RULES
from tasks.run import CatalogInfo


def test_every_field_is_a_brief_column_with_its_rules_and_a_ledger_column() -> None:
    rules = {(r.column, r.kind) for r in TABLE_RULES}
    for field in METADATA_FIELDS:
        assert field.name in KNOWN_COLUMNS
        assert (field.name, "length") in rules
        assert ((field.name, "regex") in rules) == bool(field.pattern)
        assert field.name in COLUMNS


def test_every_field_is_tagged_from_its_ledger_value() -> None:
    values = {field.name: f"{field.name} value" for field in METADATA_FIELDS}
    record = LedgerRecord(catalog="c", track_id="t", status="ready", **values)
    tagged = tag_values(record, CatalogInfo(name="c"))
    assert set(tagged) == set(TAGS) == set(FIELD_ATTRIBUTES)
    assert {name: tagged[name] for name in values} == values


def test_a_field_is_in_the_sheets_it_declares_under_its_header() -> None:
    for field in METADATA_FIELDS:
        assert set(field.sheets) <= set(SHEETS)
        for sheet, header in field.sheets.items():
            assert header in SHEETS[sheet].headers


def test_the_isrc_is_carried_without_dashes() -> None:
    isrc = next(f for f in METADATA_FIELDS if f.name == "isrc")
    assert isrc.carried("US-RC1-76-07839") == "USRC17607839"
