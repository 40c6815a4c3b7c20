"""git_state against real repositories in tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cnnlab.records.git import git_state, package_dir


def test_clean_repository(repo: Path, git: Callable[..., str]) -> None:
    state = git_state(repo / "pkg")
    assert state is not None
    assert state["root"] == str(repo.resolve())
    assert state["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert state["branch"] == "main"
    assert state["dirty"] is False
    assert state["diff"] == ""
    assert state["untracked"] == []


def test_modified_file_makes_a_dirty_diff(repo: Path) -> None:
    (repo / "train.py").write_text("lr = 0.5\n")
    state = git_state(repo)
    assert state is not None
    assert state["dirty"] is True
    assert "-lr = 0.1" in state["diff"]
    assert "+lr = 0.5" in state["diff"]
    assert state["diff_truncated"] is False


def test_untracked_file_is_dirty_and_listed(repo: Path) -> None:
    (repo / "notes.txt").write_text("new\n")
    state = git_state(repo)
    assert state is not None
    assert state["dirty"] is True
    assert state["untracked"] == ["notes.txt"]


def test_staged_change_is_in_the_diff(repo: Path, git: Callable[..., str]) -> None:
    (repo / "pkg" / "model.py").write_text("layers = 3\n")
    git(repo, "add", "pkg/model.py")
    state = git_state(repo)
    assert state is not None
    assert "+layers = 3" in state["diff"]


def test_detached_head_has_no_branch(repo: Path, git: Callable[..., str]) -> None:
    git(repo, "checkout", "-q", "--detach")
    state = git_state(repo)
    assert state is not None
    assert state["branch"] is None
    assert state["commit"] is not None


def test_repository_without_commits(git: Callable[..., str], tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    git(root, "init", "-q")
    (root / "a.py").write_text("x = 1\n")
    git(root, "add", "a.py")
    state = git_state(root)
    assert state is not None
    assert state["commit"] is None
    assert state["dirty"] is True
    assert "+x = 1" in state["diff"]


def test_folder_outside_any_repository_gives_none(tmp_path: Path) -> None:
    # tmp_path may itself sit inside a repository on a developer's machine; a ceiling stops
    # git from looking above it.
    folder = tmp_path / "plain"
    folder.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
        assert git_state(folder) is None


def test_code_in_an_ignored_folder_gives_none(repo: Path) -> None:
    # cnnlab installed into a virtualenv inside someone's repository is not that repo's code.
    site = repo / ".venv" / "lib" / "cnnlab"
    site.mkdir(parents=True)
    assert git_state(site) is None


def test_missing_git_gives_none(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repo / "no-bin-here"))
    assert git_state(repo) is None


def test_missing_folder_gives_none(tmp_path: Path) -> None:
    assert git_state(tmp_path / "absent") is None


def test_default_is_the_package_folder() -> None:
    assert (package_dir() / "records" / "git.py").is_file()
    state = git_state()
    assert state is None or package_dir().is_relative_to(state["root"])
