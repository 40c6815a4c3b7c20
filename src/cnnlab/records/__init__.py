"""Run records: the manifest (``run.json``), reading run folders back, comparing metrics."""

from __future__ import annotations

from cnnlab.records.manifest import RunStatus, build_manifest
from cnnlab.records.reproduce import RunRecord, compare_metrics, load_run

__all__ = [
    "RunRecord",
    "RunStatus",
    "build_manifest",
    "compare_metrics",
    "load_run",
]
