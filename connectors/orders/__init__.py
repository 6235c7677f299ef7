"""Exactly-once order execution: the durable ledger, the executor and the account publisher."""
