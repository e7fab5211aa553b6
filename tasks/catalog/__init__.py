"""Catalog: the ledger and journal, the page, sheets, review decisions, retakes, near-duplicates, re-renders."""
