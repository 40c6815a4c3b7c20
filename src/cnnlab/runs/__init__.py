"""Run records: the manifest (``run.json``), reading run folders back, comparing metrics."""

from __future__ import annotations

from cnnlab.runs.manifest import RunStatus, build_manifest, write_json_atomic
from cnnlab.runs.reproduce import RunRecord, compare_metrics, load_run
from cnnlab.runs.scrub import scrub_secrets

__all__ = [
    "RunRecord",
    "RunStatus",
    "build_manifest",
    "compare_metrics",
    "load_run",
    "scrub_secrets",
    "write_json_atomic",
]
