"""Delivery: a paid file checked, brought to spec, tagged and placed in the catalog; library versions."""
