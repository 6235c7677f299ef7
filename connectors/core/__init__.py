"""Pieces every connector shares: clock, backoff, health, dead letters, the feed loop."""
