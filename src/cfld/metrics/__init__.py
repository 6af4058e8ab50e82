"""cfld.metrics."""
