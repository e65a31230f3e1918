"""MeltanoLabs target-csv, extended to write the pipeline's dated day folders."""
