"""Stand-ins for shipped provider profiles, each written from its provider's docs (not from our profile)."""
