"""Run records: the manifest (``run.json``), reading run folders back, comparing metrics."""
