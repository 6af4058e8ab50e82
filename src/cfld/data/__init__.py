"""cfld.data."""
