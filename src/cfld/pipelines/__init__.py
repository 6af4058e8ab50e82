"""cfld.pipelines."""
