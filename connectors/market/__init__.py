"""Market feeds: file replay (CSV, Parquet, MT5 history export), synthetic, live MT5."""
