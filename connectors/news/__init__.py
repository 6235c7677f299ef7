"""News feeds: RSS 2.0 and Atom via feedparser, symbol/currency tagging, demo headlines."""
