"""Every command a user would type from README.md runs, through the real ``cnnlab`` command.

The commands are parsed from README.md itself, so a command added to the README is
covered without touching this file. Each one runs as written, with two documented
changes:

* placeholders (``<stamp>``, ``.../best.ckpt``, ``my_digits/``, ``runs/train/<a>``) are
  replaced by real folders and files made by the commands before it, and the tour's
  ``python -m cnnlab train ...`` runs as ``python -m cnnlab train --cfg job``;
* a command that would train for long gets the extra overrides of :data:`SHRINK`
  (only the keys it does not set itself).

Commands that download data or need a service that is not here are skipped, each with
its reason (:data:`SKIPS`).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.test_console import NOISE

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"

# The ONE set of extra arguments that keeps the README's commands short here:
# (which commands, the arguments added). An argument replaces the command's own value for
# its key, except a command's own `debug=...` (fast_dev_run is shorter still).
SHRINK: tuple[tuple[str, tuple[str, ...]], ...] = (
    # A few batches of each split, one epoch (the README trains the full default run).
    ("cnnlab train", ("debug=limit", "trainer.max_epochs=1")),
    # An Optuna sweep: two trials instead of the config's or the command's total.
    ("hparams_search=", ("hydra.sweeper.n_trials=2",)),
    ("hydra/sweeper=cnnlab_optuna", ("hydra.sweeper.n_trials=2",)),
    # The search comparisons: one small budget, two repeats (its minimum); two seeds of
    # four one-epoch trials of a few batches.
    ("compare-search mode=synthetic", ("--budgets", "4", "--repeats", "2")),
    (
        "compare-search mode=train",
        ("--seeds", "2", "--trials", "4", "--epochs", "1", "--limit-batches", "2"),
    ),
)

# A fragment of the command -> why it is not run here.
SKIPS: dict[str, str] = {
    "data=cifar10": "downloads CIFAR-10 (about 170 MB)",
    "experiment=mnist_lenet5": "downloads MNIST",
    "postgresql": "needs a PostgreSQL server (the URL is a placeholder)",
    "cnnlab dashboard": "serves until Ctrl-C (tests/tracking test the dashboard)",
    "mlflow ui": "needs the full mlflow package (flask) and serves until Ctrl-C",
    "wandb sync": "uploads to wandb.ai",
    "make ": "installs the project (tests/test_packaging.py builds and installs the wheel)",
    "pip install": "installs packages from an index",
}

# Commands that only print: cheap, so they run in the fast suite too.
CHEAP = ("--help", "--cfg job")


@dataclass(frozen=True)
class ReadmeCommand:
    """One command line of a README code block (continuation lines joined)."""

    line: str
    block: int

    @property
    def skip_reason(self) -> str | None:
        """Why the command is not run here, or None."""
        return next((why for fragment, why in SKIPS.items() if fragment in self.line), None)

    @property
    def cheap(self) -> bool:
        return any(flag in self.line.split() or flag in self.line for flag in CHEAP)


def readme_commands(text: str) -> list[ReadmeCommand]:
    """The shell commands of ``text``'s ```bash blocks, without comments and prompts."""
    commands = []
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    for number, block in enumerate(blocks):
        joined = re.sub(r"\\\n\s*", "", block)  # continuation lines
        for raw in joined.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            # The README's comments follow two or more spaces and a '#'.
            line = re.split(r"\s{2,}#", line, maxsplit=1)[0].strip()
            commands.append(ReadmeCommand(line, number))
    return commands


def shrunk(argv: list[str]) -> list[str]:
    """``argv`` with the :data:`SHRINK` arguments that apply to it."""
    line = " ".join(argv)
    if any(flag in argv for flag in ("--help", "-h", "--cfg")):
        return argv
    result = list(argv)
    for fragment, arguments in SHRINK:
        if fragment not in line:
            continue
        for argument in arguments:
            key = argument.split("=")[0] if "=" in argument else None
            own = [arg for arg in result if key is not None and arg.split("=")[0] == key]
            if own and key == "debug":
                continue
            result = [arg for arg in result if arg not in own] + [argument]
    return result


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))


def test_readme_commands_are_found_and_each_is_run_or_skipped_for_a_reason() -> None:
    lines = [command.line for command in COMMANDS]
    # The tour's first and last commands, a multi-line one, and the sweep examples.
    assert "cnnlab --help" in lines
    assert "python -m cnnlab train ..." in lines
    assert any(line.startswith("cnnlab train -m hydra/sweeper=cnnlab_optuna") for line in lines)
    assert any("'data.batch_size=choice(32,64)'" in line for line in lines)
    tour = [c for c in COMMANDS if c.line.startswith(("cnnlab", "python -m cnnlab"))]
    assert len(tour) >= 20
    ran = [c for c in tour if c.skip_reason is None]
    # Downloads and services are the only commands left out.
    assert {c.skip_reason for c in tour} - {None} <= set(SKIPS.values())
    assert len(ran) >= 17, [c.line for c in tour if c.skip_reason]


def test_shrink_adds_only_keys_a_command_does_not_set() -> None:
    assert shrunk(["cnnlab", "train", "debug=fast_dev_run"]) == [
        "cnnlab",
        "train",
        "debug=fast_dev_run",
        "trainer.max_epochs=1",
    ]
    assert shrunk(["cnnlab", "train", "--help"]) == ["cnnlab", "train", "--help"]
    assert shrunk(["cnnlab", "train", "-m", "hparams_search=tpe", "hydra.sweeper.n_trials=9"]) == [
        "cnnlab",
        "train",
        "-m",
        "hparams_search=tpe",
        "debug=limit",
        "trainer.max_epochs=1",
        "hydra.sweeper.n_trials=2",
    ]


class Tour:
    """Runs README commands in one folder, feeding later ones the folders earlier ones made."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.outputs = folder / "outputs"
        self.env = {**os.environ, "CNNLAB_OUTPUTS": str(self.outputs), "COLUMNS": "200"}

    def train_runs(self) -> list[Path]:
        """Finished single train runs that kept a best checkpoint, oldest first."""
        runs = sorted(self.outputs.glob("runs/train/*/metrics.json"))
        return [path.parent for path in runs if (path.parent / "checkpoints/best.ckpt").exists()]

    def argv(self, line: str) -> list[str]:
        """The command with its placeholders replaced by real paths."""
        runs = self.train_runs()
        if runs:
            best = runs[-1] / "checkpoints" / "best.ckpt"
            line = line.replace(".../best.ckpt", str(best))
            line = line.replace("outputs/runs/train/<stamp>", str(runs[-1]))
            if len(runs) >= 2:
                line = line.replace("runs/train/<a>", str(runs[-2].relative_to(self.outputs)))
                line = line.replace("runs/train/<b>", str(runs[-1].relative_to(self.outputs)))
        sweeps = sorted(self.outputs.glob("multiruns/train/*/optimization_results.yaml"))
        if sweeps:
            line = line.replace("outputs/multiruns/train/<stamp>", str(sweeps[-1].parent))
        if "input=my_digits/" in line:
            line = line.replace("input=my_digits/", f"input={self.digit_images()}")
        line = line.replace("cnnlab train ...", "cnnlab train --cfg job")
        assert "<" not in line and "..." not in line, f"no real value for a placeholder: {line}"
        argv = shrunk(shlex.split(line))
        if argv[0] == "cnnlab":
            argv[0] = str(Path(sys.executable).with_name("cnnlab"))
        elif argv[:3] == ["python", "-m", "cnnlab"]:
            argv[0] = sys.executable
        return argv

    def digit_images(self) -> Path:
        """A few of the bundled digits as PNG files (the user's ``my_digits/``)."""
        from PIL import Image
        from sklearn.datasets import load_digits

        folder = self.folder / "my_digits"
        folder.mkdir(exist_ok=True)
        digits = load_digits()
        for index in range(3):
            pixels = (digits.images[index] * 255 / 16).astype("uint8")
            Image.fromarray(pixels).resize((28, 28)).save(folder / f"digit_{index}.png")
        return folder

    def run(self, line: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.argv(line),
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{line}\n{output[-3000:]}"
        assert "Traceback" not in output, f"{line}\n{output[-3000:]}"
        noise = [text for text in output.splitlines() if any(n in text for n in NOISE)]
        assert noise == [], line
        return result


@pytest.mark.parametrize(
    "line", sorted({c.line for c in COMMANDS if c.cheap and c.skip_reason is None})
)
def test_readme_printing_commands_run(tmp_path: Path, line: str) -> None:
    result = Tour(tmp_path).run(line, timeout=120)
    assert result.stdout.strip()
    assert not (tmp_path / "outputs").exists()  # printing commands write nothing


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_readme_command_runs_in_order(tmp_path: Path) -> None:
    tour = Tour(tmp_path)
    ran = []
    for command in COMMANDS:
        if command.skip_reason is not None or command.cheap:
            continue
        if not command.line.startswith(("cnnlab", "python -m cnnlab")):
            continue
        tour.run(command.line)
        ran.append(command.line)
    assert len(ran) >= 14, ran
    # The commands made what they say they make.
    assert len(tour.train_runs()) >= 3
    assert list(tmp_path.glob("outputs/runs/predict/*/predictions.csv"))
    assert list(tmp_path.glob("outputs/multiruns/train/*/report.md"))
