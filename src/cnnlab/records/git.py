"""The git state of the code a run used: commit, dirty flag and the uncommitted diff.

The repository is the one the cnnlab package itself lives in, not the current folder: a run
started from anywhere records the code that ran. Every failure (no ``git``, no repository,
code installed into an ignored folder such as a virtualenv, a git error) gives ``None`` or
``None`` fields, never an exception: the record of a run must not stop the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["git_state", "package_dir"]

_TIMEOUT_S = 10.0
# Cap on the stored diff: a run record should stay small even after a large edit.
MAX_DIFF_CHARS = 1_000_000


def package_dir() -> Path:
    """Return the folder the installed ``cnnlab`` package was imported from."""
    import cnnlab

    return Path(cnnlab.__file__).resolve().parent


def git_state(path: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """Describe the git working tree that contains ``path``.

    Args:
        path: A folder inside the repository (default: :func:`package_dir`).

    Returns:
        ``None`` when git or a repository is missing, or when ``path`` is ignored by the
        repository (code installed into ``.venv/``). Otherwise a dict with ``root``,
        ``commit`` (``None`` before the first commit), ``branch`` (``None`` when detached),
        ``dirty`` (tracked changes or untracked files), ``untracked`` (paths), ``diff`` (the
        working tree against the commit, tracked files) and ``diff_truncated``.
    """
    folder = Path(path) if path is not None else package_dir()
    if shutil.which("git") is None or not folder.is_dir():
        return None
    root = _git(folder, "rev-parse", "--show-toplevel")
    if root is None:
        return None
    # check-ignore exits 0 when the path is ignored, 1 when it is not.
    if _git(folder, "check-ignore", "-q", str(folder.resolve())) is not None:
        return None
    root_dir = Path(root.strip())
    commit = _git(root_dir, "rev-parse", "--verify", "-q", "HEAD^{commit}")
    branch = _git(root_dir, "symbolic-ref", "--short", "-q", "HEAD")
    status = _git(root_dir, "status", "--porcelain=v1", "--untracked-files=normal")
    untracked = (
        [line[3:] for line in status.splitlines() if line.startswith("?? ")] if status else []
    )
    # Before the first commit, diff against the empty tree (its id depends on the hash format).
    base = commit.strip() if commit else _git(root_dir, "hash-object", "-t", "tree", "/dev/null")
    diff = (
        _git(root_dir, "diff", "--no-color", "--no-ext-diff", base.strip())
        if base is not None
        else None
    )
    truncated = diff is not None and len(diff) > MAX_DIFF_CHARS
    return {
        "root": str(root_dir),
        "commit": commit.strip() if commit else None,
        "branch": branch.strip() if branch else None,
        "dirty": bool(status.strip()) if status is not None else None,
        "untracked": untracked,
        "diff": diff[:MAX_DIFF_CHARS] if diff is not None else None,
        "diff_truncated": truncated,
    }


def _git(cwd: Path, *args: str) -> str | None:
    """Run ``git -C cwd args``; its stdout, or ``None`` on any failure or non-zero exit."""
    env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV}
    # No index lock from `git status`: runs of a sweep may ask at the same time.
    env.update(GIT_OPTIONAL_LOCKS="0", LC_ALL="C", GIT_TERMINAL_PROMPT="0")
    try:
        result = subprocess.run(
            ["git", "-C", str(cwd), *args],
            capture_output=True,
            text=True,
            errors="replace",
            env=env,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


# Set by git hooks and wrappers; they would point every command at another repository.
_REPO_ENV = frozenset({"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX"})
