"""Brokers: one interface (`base.Broker`), a paper broker (default) and MetaTrader 5."""
