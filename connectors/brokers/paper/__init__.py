"""The paper broker: the default, so the product runs end to end with no account."""
