"""Everything that touches the outside world: feeds in, brokers out.

Each adapter has the same shape (NautilusTrader style): `config` (what it needs),
`parse` (pure functions from the outside format to catalog records), `data` or
`execution` (the I/O), and `factories` (build it from `Settings`). Parsers never
do I/O, so they are tested on real-format fixture files; the I/O parts are tested
against local servers and a fake MetaTrader5 module.
"""
