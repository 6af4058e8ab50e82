"""cfld.pose."""
