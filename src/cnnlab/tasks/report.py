"""``cnnlab report SWEEP_DIR``: write a sweep's report (also written when a sweep ends)."""

from __future__ import annotations

import sys
from pathlib import Path

from cnnlab.console import OneLineParser, exit_on_user_error
from cnnlab.errors import printable


def main(argv: list[str]) -> int:
    """Write report.md, report.html, plots and best.yaml into each SWEEP_DIR.

    Returns:
        0 on success, 1 when a folder is not a readable sweep (one line on stderr). A run
        folder of the sweep that cannot be read is left out with a warning line.
    """
    parser = OneLineParser(
        prog="cnnlab report",
        description="Write the report of a sweep folder (outputs/multiruns/<task>/<stamp>).",
    )
    parser.add_argument("sweep_dirs", nargs="+", type=Path, metavar="SWEEP_DIR")
    args = parser.parse_args(argv)

    from cnnlab.sweeper.report import write_report

    for sweep_dir in args.sweep_dirs:
        with exit_on_user_error("report", log_it=False):
            report = write_report(sweep_dir)
        for warning in report.warnings:
            print(f"cnnlab report: warning: {printable(warning)}", file=sys.stderr)
        # Paths in the sweep folder: its name may hold anything, the terminal gets it escaped.
        for path in [report.markdown, report.html, *report.plots, *filter(None, [report.best])]:
            print(printable(path))
    return 0
