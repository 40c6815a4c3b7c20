"""Check that a network takes the data it is given, before any data is loaded or trained on.

A network whose layers shrink the input below a kernel (AlexNet-like pooling, DenseNet's
transitions, a checkpoint's LeNet-5 fed smaller images) fails only at its first forward pass,
deep inside torch (``RuntimeError: Kernel size can't be greater than actual input size``),
after the run folder and the data set are made. One forward pass of one image at the
configured size finds it first; on the ``meta`` device it costs no memory and no arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cnnlab.errors import CnnlabError, ConfigError, config_errors, first_line, show

if TYPE_CHECKING:
    from torch import nn

__all__ = ["check_model_matches_data", "check_network_input", "probe_network"]

# Keys of the model node that interpolate the data's by default (conf/model/*.yaml).
SHARED_WITH_DATA = ("num_classes", "in_channels")


def check_model_matches_data(cfg: Mapping[str, Any]) -> None:
    """``model.num_classes`` and ``model.in_channels`` are the data's (a resolved config).

    They are ``${data.num_classes}`` and ``${data.in_channels}`` unless the user overrides
    them; a network with fewer outputs than the data has labels fails mid-training
    (``IndexError: Target 8 is out of bounds``), one with other channels at its first batch.
    """
    model, data = cfg.get("model") or {}, cfg.get("data") or {}
    for name in SHARED_WITH_DATA:
        if name in model and name in data and model[name] != data[name]:
            raise ConfigError(
                f"model.{name}",
                f"is {show(model[name])} but data.{name} is {show(data[name])}: the network "
                f"must match the data (leave model.{name} at its default ${{data.{name}}})",
            )


def probe_network(cfg: Mapping[str, Any]) -> None:
    """Build the configured network on the meta device and pass it one image of the data's size.

    A builder's own :class:`CnnlabError` (it names its key) passes through; a network that
    cannot be built on the meta device is left to the real build, which reports it under
    ``model``. Needs ``model`` and ``data`` in ``cfg``; does nothing without them.
    """
    import torch
    from hydra.utils import instantiate

    from cnnlab.models.registry import image_hw

    model, data = cfg.get("model"), cfg.get("data")
    if not isinstance(model, Mapping) or not isinstance(data, Mapping):
        return
    if "image_size" not in data or "in_channels" not in data:
        return
    try:
        # As cnnlab.lit.module.build_network does, without importing Lightning (seconds) for
        # a check that may fail.
        with torch.device("meta"):
            net = instantiate(dict(model), _convert_="all")
    except Exception as exc:
        keyed = keyed_error(exc)
        if keyed is None:
            return  # the real build reports it, naming `model`
        raise keyed from exc
    if not isinstance(net, torch.nn.Module):
        return  # the real build reports it
    key, note = "data.image_size", ""
    if "image_size" in model and model["image_size"] != data["image_size"]:
        # The network was built for another size than the data's: name the key that differs.
        key = "model.image_size"
        note = f"is {show(model['image_size'])} but data.image_size is {show(data['image_size'])}: "
    size = image_hw(data["image_size"])
    # The network's own channels: the data's in a run (checked above), its own in a summary.
    channels = int(model.get("in_channels", data["in_channels"]))
    check_network_input(net, channels, size, key, device="meta", note=note)


def keyed_error(exc: Exception) -> CnnlabError | None:
    """The builder's error when it names its key (``norm.groups: 4 does not divide ...``).

    As :func:`cnnlab.errors.config_errors` reads it: a :class:`CnnlabError`, also wrapped by
    Hydra's instantiate, or a ``ValueError``/``TypeError`` whose message starts with the key.
    None for any other error, which only names the group.
    """
    try:
        with config_errors("model"):
            raise exc
    except ConfigError as error:
        return None if error.key == "model" else error
    except CnnlabError as error:
        return error


def check_network_input(
    net: nn.Module,
    in_channels: int,
    size: tuple[int, int],
    key: str,
    *,
    device: str = "cpu",
    note: str = "",
) -> None:
    """Run ``net`` (in eval mode) on one ``in_channels`` x ``size`` image of zeros.

    Raises:
        ConfigError: ``key`` (the image size's key) when the network refuses the input; the
            message starts with ``note``.
    """
    import torch

    was_training = net.training
    net.eval()  # batch norm takes a single image only in eval mode
    try:
        with torch.no_grad():
            net(torch.zeros(1, in_channels, *size, device=device))
    except NotImplementedError:
        return  # a layer without a meta kernel: nothing can be said here
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(
            key,
            f"{note}the network cannot take {size[0]}x{size[1]} images ({first_line(exc)}); "
            "use larger images or a network that shrinks them less",
        ) from exc
    finally:
        net.train(was_training)
