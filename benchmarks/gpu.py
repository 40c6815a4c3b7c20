"""``make bench-gpu``: cnnlab on a GPU against a plain GPU loop, and the CIFAR-10 speed run.

Usage::

    python benchmarks/gpu.py                          # on a CUDA GPU; writes BENCHMARKS.md
    python benchmarks/gpu.py --device cpu --quick --output /tmp/GPU.md   # correctness run

Rows (each with its command, in the "GPU" section of BENCHMARKS.md):

- samples/s of ``cnnlab train ... trainer=gpu perf=fast`` (bf16-mixed, channels-last, the
  set held on the device) for LeNet-5 (28x28x1) and ResNet-18 (32x32x3) on synthetic data,
  against a plain loop training the same network (cnnlab's own builders) with the same
  autocast dtype, memory layout, optimizer and device-resident data; medians of
  interleaved repeats, as in section 1 (benchmarks/throughput.py);
- the CIFAR-10 speed run's time to 94% validation accuracy
  (``experiment=cifar10_speedrun``), when CIFAR-10 is on disk.

Without CUDA (and without ``--device cpu``) it says so in one line and exits 0, leaving
BENCHMARKS.md alone. ``--device cpu --quick`` runs the whole pipeline on the CPU with tiny
budgets (synthetic data and a reachable target for the speed run): the figures mean nothing,
the pipeline is what it checks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# `python benchmarks/gpu.py` puts benchmarks/ on the path; the package lives one level up.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SECTION = "## GPU"
CIFAR_FOLDER = "cifar-10-batches-py"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny budgets, one repeat")
    parser.add_argument("--output", type=Path, default=None, help="default: BENCHMARKS.md")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder holding cifar-10-batches-py/ (default: $CNNLAB_DATA or ./data)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Measure, print the section and write it into the output file; return the exit status."""
    args = parse_args(argv)
    if args.device == "cpu":
        # The plain loop picks CUDA whenever it sees it; a CPU run must not see it.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench-gpu: no CUDA device here; nothing measured, BENCHMARKS.md unchanged")
        return 0
    from benchmarks._common import REPO, write_section

    command = "python benchmarks/gpu.py " + " ".join(sys.argv[1:] if argv is None else argv)
    data_dir = args.data_dir or Path(os.environ.get("CNNLAB_DATA", Path.cwd() / "data"))
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-gpu-") as tmp:
        workdir = Path(tmp)
        # In-process `cnnlab train` runs write their folders here, not into outputs/.
        os.environ["CNNLAB_OUTPUTS"] = str(workdir / "outputs")
        os.environ.setdefault("WANDB_MODE", "offline")
        section = gpu_section(args.device, args.quick, data_dir.resolve(), workdir, command)
    print(section)
    output = args.output or REPO / "BENCHMARKS.md"
    write_section(output, SECTION, section)
    print(f"written: {output}")
    return 0


def gpu_section(device: str, quick: bool, data_dir: Path, workdir: Path, command: str) -> str:
    """The Markdown of the GPU section: throughput rows, then the speed run."""
    import torch

    from benchmarks._common import Table, interleaved, median
    from benchmarks.throughput import LENET, RESNET, Budget, build_parts
    from cnnlab.lit.perf import PerfSettings, apply_to_network

    budgets = (
        {LENET: Budget(2, 6, 1), RESNET: Budget(1, 2, 1)}
        if quick
        else {LENET: Budget(20, 300, 5), RESNET: Budget(10, 100, 3)}
    )
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    table = Table(
        title="GPU",
        intro=(
            f"Written by `{command}` on {name}. Samples/s of `cnnlab train ... perf=fast` "
            "(bf16-mixed, channels-last, the uint8 set held on the device and batches sliced "
            "there) against a plain PyTorch loop training the same network (cnnlab's "
            "builders) with the same bf16 autocast, channels-last layout, device-resident "
            "data, Adam and per-step cosine schedule; batch 64, synthetic data, median of "
            "interleaved repeats."
            + (" **Quick run: tiny budgets, the figures mean nothing.**" if quick else "")
        ),
        columns=["network", "steps (warm-up)", "repeats", "cnnlab samples/s", "plain", "ratio"],
    )
    for case, budget in budgets.items():
        parts = build_parts(case, "none", _samples(budget))
        # The same conversion cnnlab applies: NHWC weights and an input-converting pre-hook.
        apply_to_network(parts["net"], PerfSettings(channels_last=True))
        results = interleaved(
            {
                "cnnlab": lambda c=case, b=budget: _run_cnnlab(c, b, device, workdir),
                "plain": lambda p=parts, b=budget: _run_plain(p, b),
            },
            budget.repeats,
        )
        ours, plain = median(results["cnnlab"]), median(results["plain"])
        table.rows.append(
            [
                case.label,
                f"{budget.steps} ({budget.warmup})",
                str(budget.repeats),
                f"{ours:,.0f}",
                f"{plain:,.0f}",
                f"{ours / plain:.2f}",
            ]
        )
        out = Path("OUT.json")  # the StepTimer's result file, a temporary one in the runs
        table.commands.append("cnnlab train " + " ".join(_overrides(case, budget, device, out)))
    table.commands.append("plain loop: benchmarks/gpu.py::_run_plain (throughput.run_plain)")
    return table.markdown() + "\n" + speedrun_section(device, quick, data_dir, workdir)


def _samples(budget: Any) -> int:
    from benchmarks.throughput import _samples as throughput_samples

    return int(throughput_samples(budget))


def _overrides(case: Any, budget: Any, device: str, out: Path) -> list[str]:
    from benchmarks.throughput import cnnlab_overrides

    hardware = ["trainer=gpu"] if device == "cuda" else ["trainer.accelerator=cpu"]
    return [*cnnlab_overrides(case, "none", budget, out), *hardware, "perf=fast", "logger=none"]


def _run_cnnlab(case: Any, budget: Any, device: str, workdir: Path) -> float:
    from benchmarks._common import read_json
    from cnnlab import cli

    out = Path(tempfile.mkstemp(suffix=".json", dir=workdir)[1])
    out.unlink()
    cli.main(
        ["train", *_overrides(case, budget, device, out), f"hydra.run.dir={out.with_suffix('')}"]
    )
    return float(read_json(out)["samples_per_s"])


def _run_plain(parts: dict[str, Any], budget: Any) -> float:
    """Section 1's plain loop under perf=fast's autocast (the network is channels-last)."""
    import torch

    from benchmarks.throughput import _device, run_plain

    with torch.autocast(_device().type, dtype=torch.bfloat16):
        return float(run_plain(parts, budget))


def speedrun_overrides(device: str, quick: bool, data_dir: Path) -> list[str]:
    """The ``cnnlab train`` overrides of the speed run (real CIFAR-10, or the quick stand-in)."""
    base = ["experiment=cifar10_speedrun", "perf=fast", "logger=none"]
    if not quick:
        hardware = ["trainer=gpu"] if device == "cuda" else ["trainer.accelerator=cpu"]
        return [*base, *hardware, f"paths.data_dir={data_dir}", "data.source.download=false"]
    # Generated CIFAR-size data, a tiny network and a target any run reaches.
    return [
        *base,
        "trainer.accelerator=cpu" if device == "cpu" else "trainer=gpu",
        "data=synthetic",
        "data.in_channels=3",
        "data.image_size=32",
        "data.batch_size=32",
        "data.source.num_samples=300",
        "model.widths=[4,8,8]",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "callbacks.time_to_accuracy.target=0.0",
    ]


def speedrun_section(device: str, quick: bool, data_dir: Path, workdir: Path) -> str:
    """The speed run's lines: its time to the target, or why it did not run."""
    from cnnlab import cli

    overrides = speedrun_overrides(device, quick, data_dir)
    lines = ["### CIFAR-10 speed run (airbench94's recipe; airbench: 94% in 3.29 s on an A100)", ""]
    if not quick and not (data_dir / CIFAR_FOLDER).is_dir():
        lines.append(
            f"- skipped: CIFAR-10 is not in {data_dir / CIFAR_FOLDER} (fetch it once with "
            "`cnnlab train data=cifar10 debug=fast_dev_run`, or pass --data-dir)."
        )
    else:
        run_dir = workdir / "speedrun"
        tic = time.perf_counter()
        cli.main(["train", *overrides, f"hydra.run.dir={run_dir}"])
        total = time.perf_counter() - tic
        lines += _speedrun_result(run_dir, total)
    lines += ["", "Command:", "", "```", "cnnlab train " + " ".join(overrides), "```", ""]
    return "\n".join(lines)


def _speedrun_result(run_dir: Path, total: float) -> list[str]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    epochs = json.loads((run_dir / "run.json").read_text())["timings"].get("epochs")
    result_file = run_dir / "time_to_accuracy.json"
    if not result_file.is_file():
        best = metrics.get("val/acc_best", float("nan"))
        return [f"- target not reached in {epochs} epochs (best val/acc {best:.4f})."]
    result = json.loads(result_file.read_text())
    return [
        f"- val/acc {result['value']:.4f} >= {result['target']} after epoch "
        f"{result['epoch'] + 1}: {result['train_seconds']:.2f} s of training "
        f"(airbench's clock), {result['seconds']:.2f} s wall time with validation; "
        f"test/acc {metrics.get('test/acc', float('nan')):.4f}; whole command {total:.1f} s.",
    ]


if __name__ == "__main__":
    sys.exit(main())
