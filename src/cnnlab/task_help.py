"""``cnnlab <task> --help``: the config groups that task composes, one line per group.

Hydra's own help lists every folder of the config tree for every task; ``predict``
uses none of ``model``, ``optimizer`` or ``loss``. This reads the task's defaults list
(its primary config file) instead, so the help follows the config files.
"""

from __future__ import annotations

from pathlib import Path

import yaml

# Defaults entries that are Hydra's or the machine's, not choices a user makes per run.
_NOT_LISTED = ("hydra", "local", "_self_")


def task_groups(config_dir: Path, config_name: str) -> list[tuple[str, str | None]]:
    """The ``(group, default option or None)`` pairs of ``config_name``'s defaults list."""
    text = (config_dir / f"{config_name}.yaml").read_text(encoding="utf-8")
    defaults = (yaml.safe_load(text) or {}).get("defaults", [])
    groups: list[tuple[str, str | None]] = []
    for entry in defaults:
        if not isinstance(entry, dict):
            continue  # `_self_`
        for key, option in entry.items():
            group = key.removeprefix("optional ").removeprefix("override ")
            if group not in _NOT_LISTED:
                groups.append((group, None if option is None else str(option)))
    return groups


def task_keys(config_dir: Path, config_name: str) -> list[str]:
    """The keys ``config_name`` sets itself (besides its groups), in file order."""
    text = (config_dir / f"{config_name}.yaml").read_text(encoding="utf-8")
    return [key for key in (yaml.safe_load(text) or {}) if key != "defaults"]


def group_options(config_dir: Path, group: str) -> list[str]:
    """The option names of ``group``: its ``.yaml`` files, sorted."""
    return sorted(path.stem for path in (config_dir / group).glob("*.yaml"))


def task_help(task: str, description: str, config_dir: Path, config_name: str) -> str:
    """The help text of a Hydra task: usage, its groups with their options, the flags."""
    groups = task_groups(config_dir, config_name)
    width = max((len(group) for group, _ in groups), default=0)
    lines = [
        f"usage: cnnlab {task} [KEY=VALUE | GROUP=OPTION ...] [-m] [--cfg job]",
        "",
        description if description.endswith(".") else description + ".",
        "",
        "config groups (GROUP=OPTION; * the default, none: off unless chosen):",
    ]
    for group, default in groups:
        names = group_options(config_dir, group)
        options = [f"{name}*" if name == default else name for name in names]
        suffix = "" if default is not None else "  (none)"
        lines.append(f"  {group + ':':<{width + 1}}  {', '.join(options)}{suffix}")
    keys = task_keys(config_dir, config_name)
    lines += [
        "",
        f"top-level keys: {', '.join(keys)}",
        f"Every key of the composed config: `cnnlab {task} --cfg job`.",
        "Hydra's flags: -m/--multirun (sweep), -c/--cfg job|hydra|all, --resolve, --info,",
        "--config-dir DIR (add your own configs), --hydra-help.",
    ]
    return "\n".join(lines)
