"""Sweeps on a real SLURM cluster, through the real ``cnnlab train -m`` command.

Marked ``cluster``: ``make cluster-up`` starts a one-node cluster on this machine
(``tools/slurm/slurm-up.sh``: munge, MariaDB, slurmdbd, slurmctld, slurmd), ``make
test-cluster`` runs these tests, ``make cluster-down`` stops it. Skipped where no cluster
answers, except under CI (``CI=true``), where that is a failure. Nothing is mocked: jobs are
submitted with sbatch, cancelled with scancel, and their states read with sacct (or, for the
cluster without accounting, squeue). Each trial is a job of the launcher's default size.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

pytestmark = pytest.mark.cluster

# A trial: two epochs of a few batches, no logger, no test pass.
TRIAL = ["debug=limit", "logger=none", "test=false", "trainer=cpu", "hparams_search=random"]
SLURM = ["hydra/launcher=slurm", "hydra.launcher.timeout_min=10"]


@pytest.fixture(scope="module", autouse=True)
def cluster() -> None:
    """A SLURM controller that answers, with accounting; else skip (fail under CI)."""
    problem = None
    if shutil.which("sinfo") is None:
        problem = "no sinfo: SLURM is not installed (make cluster-up)"
    else:
        for command in (["sinfo", "--noheader"], ["sacct", "--noheader", "-X", "-o", "JobID"]):
            proc = subprocess.run(command, capture_output=True, text=True, timeout=30)
            if proc.returncode != 0:
                problem = f"{command[0]} fails ({proc.stderr.strip()}): make cluster-up"
                break
    if problem is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true but no SLURM cluster answers: {problem}")
    pytest.skip(problem)


def cnnlab(tmp_path: Path, *args: str, path: str | None = None) -> subprocess.Popen[str]:
    """Start ``python -m cnnlab train -m ARGS`` in ``tmp_path``; its output goes to a file."""
    env = {**os.environ, "CNNLAB_OUTPUTS": str(tmp_path / "outputs")}
    if path is not None:
        env["PATH"] = f"{path}{os.pathsep}{env['PATH']}"
    tmp_path.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "cnnlab", "train", "-m", *args],
        cwd=tmp_path,
        env=env,
        stdout=(tmp_path / "out.log").open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen[str], tmp_path: Path, timeout: float) -> str:
    """Wait for ``proc`` at most ``timeout`` s (then kill it) and return its output."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return (tmp_path / "out.log").read_text()


def trials(tmp_path: Path) -> list[optuna.trial.FrozenTrial]:
    """The trials of the one study in ``tmp_path``'s outputs (none without a study)."""
    url = f"sqlite:///{tmp_path / 'outputs' / 'optuna.db'}"
    if not (tmp_path / "outputs" / "optuna.db").exists():
        return []
    summaries = optuna.get_all_study_summaries(url)
    assert len(summaries) <= 1
    if not summaries:
        return []
    return optuna.load_study(study_name=summaries[0].study_name, storage=url).trials


def sweep_dir(tmp_path: Path) -> Path:
    (folder,) = (tmp_path / "outputs" / "multiruns" / "train").iterdir()
    return folder


def job_states(job_ids: list[str]) -> dict[str, str]:
    """Each job's state by sacct (accounting on the cluster's slurmdbd)."""
    out = subprocess.run(
        ["sacct", "--noheader", "-X", "--parsable2", "-o", "JobID,State", "-j", ",".join(job_ids)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split("|")[:2] for line in out.splitlines() if line)


def submitted_jobs(folder: Path) -> list[str]:
    """The SLURM job ids of the sweep's trials (submitit's folder per job or array task)."""
    names = {p.name for p in (folder / ".submitit").iterdir() if p.is_dir()}
    arrays = {name.split("_")[0] for name in names if "_" in name}
    return sorted(names - arrays)


def training_job(tmp_path: Path, timeout: float = 180) -> str:
    """Wait until a job of the sweep in ``tmp_path`` has trained an epoch; return its id.

    Only this sweep's jobs count (by their working folder): a job of an earlier test may
    still be RUNNING while its interpreter exits. And the job must be training, not starting:
    submitit passes over SIGTERM once its handlers are set, so a job cancelled then runs on
    for SLURM's KillWait (10 s here) and, if it finishes in that time, rightly completes.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = subprocess.run(
            ["squeue", "--noheader", "--states=RUNNING", "--format=%i %Z"],
            capture_output=True,
            text=True,
        ).stdout.splitlines()
        for job, _, folder in (line.partition(" ") for line in listed):
            logs = (tmp_path / "outputs").glob(f"multiruns/train/*/.submitit/{job}/*_log.out")
            if Path(folder).resolve() == tmp_path.resolve() and any(
                "epoch 1/" in p.read_text() for p in logs
            ):
                return job
        time.sleep(0.5)
    raise AssertionError("no job of this sweep trained an epoch")


def test_settings_the_cluster_cannot_meet_stop_before_any_trial(tmp_path: Path) -> None:
    # Four commands at once (each fails in its pre-flight, before any trial is asked).
    cases = {
        "partition": ("hydra.launcher.partition=gpu", "hydra.launcher.partition=gpu: no such"),
        "gres": ("hydra.launcher.gpus_per_node=1", "hydra.launcher.gpus_per_node=1: partition"),
        "cpus": ("hydra.launcher.cpus_per_task=64", "hydra.launcher.cpus_per_task=64: the larg"),
        "mem": ("hydra.launcher.mem_gb=100000", "hydra.launcher.mem_gb=100000: the largest"),
    }
    procs = {
        name: cnnlab(tmp_path / name, *TRIAL, *SLURM, override, "hydra.sweeper.n_trials=1")
        for name, (override, _) in cases.items()
    }
    for name, proc in procs.items():
        output = finish(proc, tmp_path / name, timeout=120)
        assert proc.returncode == 1, output[-2000:]
        last = output.strip().splitlines()[-1]
        assert last.startswith(f"cnnlab train: error: {cases[name][1]}"), output[-2000:]
        assert "Traceback" not in output
        assert trials(tmp_path / name) == []  # nothing asked, nothing consumed


def test_four_trial_sweep_runs_each_trial_as_a_completed_job(tmp_path: Path) -> None:
    # Two 1-CPU trials at a time (an array of two jobs per batch) on the 2-CPU node.
    proc = cnnlab(
        tmp_path,
        *TRIAL,
        *SLURM,
        "hydra.launcher.cpus_per_task=1",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_trials=4",
    )
    output = finish(proc, tmp_path, timeout=300)
    assert proc.returncode == 0, output[-3000:]
    study = trials(tmp_path)
    assert [t.state for t in study] == [TrialState.COMPLETE] * 4
    folder = sweep_dir(tmp_path)
    jobs = submitted_jobs(folder)
    assert len(jobs) == 4
    assert set(job_states(jobs).values()) == {"COMPLETED"}
    best = max(study, key=lambda t: t.value or 0.0)
    assert f"Best trial {best.number}:" in (folder / "best.yaml").read_text()
    results = yaml.safe_load((folder / "optimization_results.yaml").read_text())
    assert results["best_params"] == best.params and results["best_value"] == best.value
    assert (folder / "report.md").is_file()
    for trial in study:
        run = json.loads((Path(trial.user_attrs["run_dir"]) / "run.json").read_text())
        assert run["status"] == "completed" and run["hardware"]["torch_threads"] == 1


def _cancel_a_trial(tmp_path: Path, path: str | None = None) -> tuple[str, float]:
    """A one-trial sweep whose job is cancelled while it trains; its output and cancel time.

    Its 60 epochs take well over SLURM's KillWait, so the cancel ends the job; its copy
    continues from the last checkpoint.
    """
    long = ["trainer.max_epochs=60", "callbacks.early_stopping=null"]
    proc = cnnlab(tmp_path, *TRIAL, *long, *SLURM, "hydra.sweeper.n_trials=1", path=path)
    job = training_job(tmp_path)
    subprocess.run(["scancel", job], check=True)
    cancelled = time.time()
    return finish(proc, tmp_path, timeout=240), cancelled


def _assert_cancelled_point_ran_again(tmp_path: Path, output: str, cancelled: float) -> None:
    first, copy = trials(tmp_path)
    assert first.state == TrialState.FAIL and "CANCELLED" in first.user_attrs["error"]
    assert first.datetime_complete is not None
    assert first.datetime_complete.timestamp() - cancelled < 60
    assert copy.state == TrialState.COMPLETE and copy.params == first.params
    assert "trial 0: its point is queued to run again" in output
    assert "best val/acc_best" in output


def test_a_cancelled_trial_fails_within_a_minute_and_its_point_runs_again(tmp_path: Path) -> None:
    output, cancelled = _cancel_a_trial(tmp_path)
    _assert_cancelled_point_ran_again(tmp_path, output, cancelled)
    states = job_states(submitted_jobs(sweep_dir(tmp_path)))
    assert sorted(s.split()[0] for s in states.values()) == ["CANCELLED", "COMPLETED"]


def test_without_accounting_one_warning_and_a_bounded_wait(tmp_path: Path) -> None:
    # The cluster without slurmdbd: every sacct fails, as this one on the sweep's PATH does.
    no_sacct = tmp_path / "bin"
    no_sacct.mkdir()
    (no_sacct / "sacct").write_text(
        "#!/bin/sh\necho 'sacct: error: Slurm accounting storage is disabled' >&2\nexit 1\n"
    )
    (no_sacct / "sacct").chmod(0o755)
    output, cancelled = _cancel_a_trial(tmp_path / "sweep", path=str(no_sacct))
    _assert_cancelled_point_ran_again(tmp_path / "sweep", output, cancelled)
    assert output.count("sacct fails (sacct: error: Slurm accounting storage is disabled)") == 1
    assert "Bypassing sacct error" not in output


def _worker(n_trials: int, storage: str, *extra: str) -> list[str]:
    """One worker of study ``workers`` on ``storage``: a `cnnlab train -m` array task runs."""
    return [
        sys.executable,
        "-m",
        "cnnlab",
        "train",
        "-m",
        *TRIAL,
        f"hydra.sweeper.n_trials={n_trials}",
        "hydra.sweeper.report=false",
        "hydra.sweeper.study_name=workers",
        *extra,
        f'hydra.sweeper.storage="{storage}"',
    ]


def _submit_workers(
    tmp_path: Path, worker: list[str], *flags: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    """``sbatch`` a 2-task array (one CPU each) of ``worker``, logs in ``tmp_path``."""
    return subprocess.run(
        [
            "sbatch",
            *flags,
            "--parsable",
            "--array=0-1",
            "--cpus-per-task=1",
            f"--output={tmp_path}/worker-%a.log",
            f"--wrap={shlex.join(worker)}",
        ],
        cwd=tmp_path,
        env={**os.environ, "CNNLAB_OUTPUTS": str(tmp_path / "outputs")},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_an_sbatch_array_of_workers_shares_one_postgres_study(
    tmp_path: Path, postgres_url: str
) -> None:
    # The README's recipe for short trials: each array task is one `cnnlab train -m` worker
    # that runs many trials in one process, all on one PostgreSQL study (pgserver).
    n_trials = 4
    worker = _worker(n_trials, postgres_url)
    proc = _submit_workers(tmp_path, worker, "--wait", timeout=300)
    logs = "\n".join(p.read_text()[-2000:] for p in sorted(tmp_path.glob("worker-*.log")))
    assert proc.returncode == 0, proc.stderr + logs
    array = proc.stdout.strip().split(";")[0]
    assert job_states([f"{array}_0", f"{array}_1"]) == {
        f"{array}_0": "COMPLETED",
        f"{array}_1": "COMPLETED",
    }
    study = optuna.load_study(study_name="workers", storage=postgres_url)
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(study.trials) == len(done) == n_trials  # none lost, none beyond the total
    assert len({tuple(sorted(t.params.items())) for t in done}) == n_trials  # distinct
    assert "Traceback" not in logs


def test_ddp_launched_by_slurm_matches_lightnings_own_ddp(tmp_path: Path) -> None:
    # One run over the 2 tasks of one srun step (Lightning's SLURM environment gives the
    # ranks), beside the same run whose second rank Lightning starts itself (trainer=ddp_cpu).
    run = ["train", "trainer=ddp_cpu", "debug=limit", "logger=none", "seed=3"]
    env = {**os.environ, "CNNLAB_OUTPUTS": str(tmp_path / "outputs")}
    srun = ["srun", "--nodes=1", "--ntasks-per-node=2", "--cpus-per-task=1", "--kill-on-bad-exit=1"]
    ranks = subprocess.Popen(
        [*srun, sys.executable, "-m", "cnnlab", *run],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    local = subprocess.run(
        [sys.executable, "-m", "cnnlab", *run],
        cwd=tmp_path,
        env={**env, "CNNLAB_OUTPUTS": str(tmp_path / "local")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = ranks.communicate(timeout=300)[0]
    assert ranks.returncode == 0, output[-3000:]
    assert local.returncode == 0, local.stderr[-3000:]
    (folder,) = (tmp_path / "outputs" / "runs" / "train").iterdir()  # one folder for both ranks
    assert folder.name.startswith("slurm-")
    (reference,) = (tmp_path / "local" / "runs" / "train").iterdir()
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "completed"
    assert record["config"]["trainer"]["devices"] == 2
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics == json.loads((reference / "metrics.json").read_text())


def test_a_cancelled_worker_leaves_its_trial_to_the_other(
    tmp_path: Path, postgres_url: str
) -> None:
    # Two array tasks are workers of one PostgreSQL study; one is cancelled (scancel) while
    # both train. Its trial is FAIL and queued again, and the other worker runs the copy:
    # n_trials points complete, none lost, none left RUNNING. Trials of 20 epochs (a few
    # seconds): the cancel lands in a fit, not between two trials.
    n_trials = 6
    worker = _worker(
        n_trials,
        postgres_url,
        "trainer.max_epochs=20",
        "callbacks.early_stopping=null",
        "hydra.sweeper.heartbeat_interval=1",
        "hydra.sweeper.grace_period=5",
    )
    submitted = _submit_workers(tmp_path, worker, timeout=60)
    assert submitted.returncode == 0, submitted.stderr
    array = submitted.stdout.strip()

    def running_trials() -> int:
        try:
            study = optuna.load_study(study_name="workers", storage=postgres_url)
        except KeyError:  # not created yet
            return 0
        return sum(t.state == TrialState.RUNNING for t in study.get_trials(deepcopy=False))

    deadline = time.monotonic() + 180
    while (running := running_trials()) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    # Read once: asked again, a worker may be between two trials.
    assert running == 2, "the two workers never trained at once"
    subprocess.run(["scancel", f"{array}_0"], check=True, timeout=30)
    while time.monotonic() < deadline + 240:  # the other worker finishes the study
        queued = subprocess.run(
            ["squeue", "--noheader", f"--jobs={array}", "--format=%i"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if not queued:
            break
        time.sleep(1)
    logs = "\n".join(p.read_text()[-2000:] for p in sorted(tmp_path.glob("worker-*.log")))
    states = job_states([f"{array}_0", f"{array}_1"])
    assert states[f"{array}_0"].startswith("CANCELLED"), (states, logs)  # "CANCELLED by 0"
    assert states[f"{array}_1"] == "COMPLETED", (states, logs)
    trials_ = optuna.load_study(study_name="workers", storage=postgres_url).trials
    done = [t for t in trials_ if t.state == TrialState.COMPLETE]
    failed = [t for t in trials_ if t.state == TrialState.FAIL]
    assert not [t for t in trials_ if t.state == TrialState.RUNNING], logs
    assert len(done) == n_trials and len(failed) == 1, logs
    points = {tuple(sorted(t.params.items())) for t in done}
    assert len(points) == n_trials  # distinct
    assert tuple(sorted(failed[0].params.items())) in points  # the cancelled point ran again
