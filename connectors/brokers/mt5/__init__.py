"""MetaTrader 5 through the `MetaTrader5` package (Windows) or the `mt5linux` bridge.

Both expose the same functions; the module object is injected, so the same code
runs against either and against `tests/fakes/mt5.py`.
"""
