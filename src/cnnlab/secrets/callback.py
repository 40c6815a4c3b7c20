"""Masking secrets in the files Hydra writes itself, and in every job's log lines.

Hydra saves ``.hydra/config.yaml``, ``hydra.yaml`` and ``overrides.yaml`` before the task
runs, with every value as given: ``+db_password=hunter2`` lands on disk. The
:class:`ScrubSecrets` callback (``hydra.callbacks.mask_private_values`` in ``conf/hydra``;
a key without a secret-looking word, so it is not masked itself) runs right after that
save, in the job's process, and replaces each file by its masked copy (written beside it
and renamed over it). It changes files only: the config the task
receives keeps the real values. It also masks every log line of the process (the job's
log file, and the console, which wandb copies into ``output.log``).

Before anything is written, it gives the composed config (the sweeper's storage and the
command line's overrides in its ``hydra`` node included) to
:func:`~cnnlab.secrets.mask.remember_secrets`: from then on every mask in the process finds
each secret value wherever it appears, whatever the text around it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from cnnlab.secrets.mask import remember_secrets, remember_urls, scrub_secrets, scrub_text

__all__ = [
    "ScrubSecrets",
    "install_log_scrubbing",
    "mask_record",
    "remember_config_secrets",
    "scrub_yaml_file",
]

HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")


def install_log_scrubbing() -> None:
    """Mask secrets in every log record this process creates, whatever its handlers.

    Hydra's launcher re-configures logging before each batch of jobs, so a filter on
    today's handlers would not last; the record factory does. Idempotent.
    """
    factory = logging.getLogRecordFactory()
    if getattr(factory, "masks_secrets", False):
        return

    def masking_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        mask_record(record)
        return record

    masking_factory.masks_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(masking_factory)


def remember_config_secrets(config: DictConfig) -> None:
    """Remember the secret values of a composed config, as written and as resolved.

    A value may reach the config through an interpolation (``${oc.env:DB_PASSWORD}``), so
    each top-level node is also resolved; one that cannot be resolved yet (a ``${hydra:...}``
    value Hydra sets when the job starts) is remembered as written, and resolved in the job.
    """
    remember_secrets(OmegaConf.to_container(config, resolve=False))
    for key in config:
        try:
            remember_secrets(OmegaConf.to_container(config[key], resolve=True))
        except Exception:  # an interpolation that resolves only later
            continue


def mask_record(record: logging.LogRecord) -> None:
    """Replace a record's message by its masked text when it holds a secret."""
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: logging reports it when the record is emitted
        return
    masked = scrub_text(message)
    if masked != message:
        record.msg, record.args = masked, None


def scrub_yaml_file(path: Path) -> bool:
    """Rewrite a YAML file with its secrets masked; return whether anything changed.

    Interpolations stay as written (the file is not resolved), so the masked file composes
    exactly as the original did, save for the masked values.
    """
    if not path.is_file():
        return False
    # Most files hold no secret: a plain YAML parse (libyaml's where present) finds that out
    # twenty times faster than OmegaConf's loader, which only a file to rewrite needs.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as handle:
        parsed = yaml.load(handle, Loader=loader)
    if scrub_secrets(parsed) == parsed:
        return False
    original = OmegaConf.load(path)
    plain = OmegaConf.to_container(original, resolve=False)
    masked = scrub_secrets(plain)
    if masked == plain:
        return False
    text = OmegaConf.to_yaml(OmegaConf.create(masked))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


class ScrubSecrets(Callback):
    """Hydra callback: mask secrets in ``.hydra/*.yaml``, ``multirun.yaml`` and log lines.

    Hydra turns an exception in a callback into a warning and goes on; so a file that
    cannot be masked is deleted rather than left with the secret in it.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        remember_config_secrets(config)
        install_log_scrubbing()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        remember_config_secrets(config)
        install_log_scrubbing()
        # The sweeper records its storage URL masked and reopens it at the end of the sweep.
        remember_urls(OmegaConf.to_container(config.hydra, resolve=False))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        remember_config_secrets(config)
        install_log_scrubbing()
        hydra = config.hydra
        if hydra.output_subdir is not None:
            folder = Path(str(hydra.runtime.output_dir)) / str(hydra.output_subdir)
            for name in HYDRA_FILES:
                _scrub_or_remove(folder / name)
        if hydra.mode == RunMode.MULTIRUN:
            _scrub_or_remove(Path(str(hydra.sweep.dir)) / "multirun.yaml")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        _scrub_or_remove(Path(str(config.hydra.sweep.dir)) / "multirun.yaml")


def _scrub_or_remove(path: Path) -> None:
    try:
        scrub_yaml_file(path)
    except Exception:
        path.unlink(missing_ok=True)
        raise
