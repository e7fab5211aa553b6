"""Intake: the brief read, validated (with its report) and planned (seeds, fingerprints, names, budget)."""
