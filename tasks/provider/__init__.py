"""Provider: which provider a run talks to, checks before it starts, metering and pacing of requests."""
