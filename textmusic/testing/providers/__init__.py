"""Stand-ins for named hosted providers, each written from that provider's public docs (not from our profiles)."""
