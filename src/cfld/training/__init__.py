"""cfld.training."""
