"""cfld.models."""
