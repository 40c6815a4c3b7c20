"""Performance switches of the ``perf`` config group, applied before training starts.

``conf/perf/default.yaml`` leaves everything off, so a run computes exactly what plain
float32 PyTorch computes; ``conf/perf/fast.yaml`` is the set to use on a GPU. Mixed
precision is not here: it is Lightning's ``trainer.precision`` (``bf16-mixed``,
``16-mixed``), which ``perf=fast`` sets.

- ``channels_last``: weights and activations in NHWC layout, which cuDNN's tensor-core
  convolutions prefer; the network's input is converted by a forward pre-hook.
- ``compile``: ``torch.compile`` of the network in place (``nn.Module.compile``), so
  parameter names, hence checkpoints, stay those of the plain network.
- ``matmul_precision``: ``torch.set_float32_matmul_precision`` (``high`` allows TF32).
- ``cudnn_benchmark``: let cuDNN time its algorithms for each input shape.

Example:
    >>> from torch import nn
    >>> settings = perf_settings({"channels_last": True})
    >>> net = apply_to_network(nn.Conv2d(3, 4, 3), settings)
    >>> net.weight.is_contiguous(memory_format=torch.channels_last)
    True
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from cnnlab.errors import ConfigError

log = logging.getLogger(__name__)

MATMUL_PRECISIONS = ("highest", "high", "medium")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass(frozen=True)
class PerfSettings:
    """The validated ``perf`` node: the switches of the module docstring."""

    channels_last: bool = False
    compile: bool = False
    compile_mode: str = "default"  # torch.compile's mode
    matmul_precision: str | None = None  # None leaves torch's setting
    cudnn_benchmark: bool = False


def perf_settings(cfg: Mapping[str, Any] | None) -> PerfSettings:
    """Validate the ``perf`` node (None: everything off).

    Raises:
        ConfigError: Naming the ``perf.*`` key of an unknown or invalid value.
    """
    cfg = dict(cfg or {})
    known = {f.name for f in fields(PerfSettings)}
    for name in cfg:
        if name not in known:
            raise ConfigError(f"perf.{name}", f"is not a perf switch; choose from {sorted(known)}")
    for name in ("channels_last", "compile", "cudnn_benchmark"):
        if name in cfg and not isinstance(cfg[name], bool):
            raise ConfigError(f"perf.{name}", f"must be true or false, got {cfg[name]!r}")
    if cfg.get("compile_mode", "default") not in COMPILE_MODES:
        raise ConfigError(
            "perf.compile_mode",
            f"unknown mode {cfg['compile_mode']!r}; choose from {COMPILE_MODES}",
        )
    precision = cfg.get("matmul_precision")
    if precision is not None and precision not in MATMUL_PRECISIONS:
        raise ConfigError(
            "perf.matmul_precision", f"unknown {precision!r}; choose from {MATMUL_PRECISIONS}"
        )
    return PerfSettings(**cfg)


def configure_backends(settings: PerfSettings, *, deterministic: bool = False) -> None:
    """Apply the process-wide switches: matmul precision and cuDNN benchmark mode.

    Raises:
        ConfigError: ``perf.cudnn_benchmark`` with ``deterministic`` (``trainer.deterministic``):
            benchmark mode picks algorithms by timing them, so the two cannot be on together.
    """
    if settings.matmul_precision is not None:
        torch.set_float32_matmul_precision(settings.matmul_precision)
    if settings.cudnn_benchmark:
        if deterministic:
            raise ConfigError(
                "perf.cudnn_benchmark",
                "cannot be true with trainer.deterministic=true (benchmark mode picks "
                "algorithms by timing them); turn one of them off",
            )
        torch.backends.cudnn.benchmark = True


def apply_to_network(net: nn.Module, settings: PerfSettings) -> nn.Module:
    """Convert ``net`` to channels-last and compile it, in place, as ``settings`` ask.

    Returns:
        ``net`` itself (its parameter names are unchanged, so checkpoints load either way).
    """
    if settings.channels_last:
        net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        net.register_forward_pre_hook(_channels_last_input)
    if settings.compile:
        log.info("compiling the network (mode=%s); the first steps are slow", settings.compile_mode)
        net.compile(mode=settings.compile_mode)
    return net


def _channels_last_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Forward pre-hook: hand a 4-D image batch to the network in channels-last layout.

    A module-level function (not a closure), so a network with the hook still pickles.
    """
    if args and isinstance(args[0], torch.Tensor) and args[0].ndim == 4:
        return (args[0].contiguous(memory_format=torch.channels_last), *args[1:])
    return args


def apply_perf(cfg: Any, network: nn.Module) -> PerfSettings:
    """Apply the run config's ``perf`` node (and ``trainer.deterministic``): the backend
    switches and the conversion of ``network`` in place. Returns the settings applied."""
    from cnnlab.config import to_dict

    settings = perf_settings(to_dict(cfg.get("perf")))
    trainer = cfg.get("trainer") or {}
    configure_backends(settings, deterministic=bool(trainer.get("deterministic", False)))
    apply_to_network(network, settings)
    return settings
