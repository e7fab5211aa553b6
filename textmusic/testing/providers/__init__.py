"""Stand-ins for the shipped providers, each written from its public docs (see each module), not from our profile."""
