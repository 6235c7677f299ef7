"""Economic calendar feeds: ForexFactory-style weekly export (JSON/XML), CSV import, demo."""
