"""The ``perf`` switches keep results correct, and bad values name their key."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf
from torch.nn import functional as F

from cnnlab.errors import ConfigError
from cnnlab.lit.perf import (
    PerfSettings,
    apply_perf,
    apply_to_network,
    configure_backends,
    perf_settings,
)
from cnnlab.models import build_model
from tests.conftest import only_run_dir, quick


@pytest.fixture(autouse=True)
def _restore_backends() -> Iterator[None]:
    """The switches are process-wide; put them back after each test."""
    precision = torch.get_float32_matmul_precision()
    benchmark = torch.backends.cudnn.benchmark
    yield
    torch.set_float32_matmul_precision(precision)
    torch.backends.cudnn.benchmark = benchmark


def _pair(name: str = "lenet5", channels: int = 1, size: int = 28) -> tuple[Any, Any]:
    """Two identical networks (same seed), in train mode."""
    nets = []
    for _ in range(2):
        torch.manual_seed(0)
        nets.append(build_model(name=name, in_channels=channels, num_classes=10, image_size=size))
    return nets[0], nets[1]


def _loss_and_grads(net: Any, x: torch.Tensor, y: torch.Tensor) -> tuple[Any, ...]:
    net.zero_grad()
    scores = net(x)
    loss = F.cross_entropy(scores, y)
    loss.backward()
    return scores.detach(), loss.detach(), [p.grad.clone() for p in net.parameters()]


@pytest.mark.parametrize(("name", "channels", "size"), [("lenet5", 1, 28), ("simple_cnn", 3, 16)])
def test_channels_last_gives_the_same_outputs_loss_and_gradients(
    name: str, channels: int, size: int
) -> None:
    plain, converted = _pair(name, channels, size)
    apply_to_network(converted, PerfSettings(channels_last=True))
    conv = next(m for m in converted.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    torch.manual_seed(1)
    x, y = torch.randn(8, channels, size, size), torch.randint(0, 10, (8,))
    scores_a, loss_a, grads_a = _loss_and_grads(plain, x, y)
    scores_b, loss_b, grads_b = _loss_and_grads(converted, x, y)
    torch.testing.assert_close(scores_b, scores_a, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(loss_b, loss_a, rtol=1e-5, atol=1e-6)
    for grad_b, grad_a in zip(grads_b, grads_a, strict=True):
        torch.testing.assert_close(grad_b, grad_a, rtol=1e-3, atol=1e-5)


def test_channels_last_network_still_pickles_and_takes_3d_input_unchanged() -> None:
    net, _ = _pair()
    apply_to_network(net, PerfSettings(channels_last=True))
    clone = pickle.loads(pickle.dumps(net))
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(clone(x), net(x))


def test_channels_last_keeps_parameter_names() -> None:
    plain, converted = _pair()
    apply_to_network(converted, PerfSettings(channels_last=True, compile=False))
    assert list(converted.state_dict()) == list(plain.state_dict())


def test_matmul_precision_high_stays_close_to_float32() -> None:
    plain, _ = _pair()
    x = torch.randn(4, 1, 28, 28)
    expected = plain(x).detach()
    configure_backends(PerfSettings(matmul_precision="high"))
    assert torch.get_float32_matmul_precision() == "high"
    torch.testing.assert_close(plain(x).detach(), expected, rtol=1e-2, atol=1e-3)


def test_bf16_autocast_on_cpu_stays_close_to_float32() -> None:
    plain, _ = _pair()
    x = torch.randn(16, 1, 28, 28)
    expected = plain(x).detach()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = plain(x)
    assert scores.dtype == torch.bfloat16
    torch.testing.assert_close(scores.float().detach(), expected, rtol=0.05, atol=0.05)


def test_cudnn_benchmark_is_set_and_refused_with_deterministic() -> None:
    configure_backends(PerfSettings(cudnn_benchmark=True))
    assert torch.backends.cudnn.benchmark is True
    with pytest.raises(ConfigError, match=r"^perf\.cudnn_benchmark"):
        configure_backends(PerfSettings(cudnn_benchmark=True), deterministic=True)


def test_default_settings_change_nothing() -> None:
    before = torch.get_float32_matmul_precision(), torch.backends.cudnn.benchmark
    net, reference = _pair()
    cfg = OmegaConf.create({"perf": {"channels_last": False}, "trainer": {"deterministic": True}})
    assert apply_perf(cfg, net) == PerfSettings()
    assert (torch.get_float32_matmul_precision(), torch.backends.cudnn.benchmark) == before
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(net(x), reference(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("cfg", "key"),
    [
        ({"channel_last": True}, "perf.channel_last"),
        ({"channels_last": "yes"}, "perf.channels_last"),
        ({"compile": 1}, "perf.compile"),
        ({"compile_mode": "fastest"}, "perf.compile_mode"),
        ({"matmul_precision": "tf32"}, "perf.matmul_precision"),
        ({"cudnn_benchmark": None}, "perf.cudnn_benchmark"),
    ],
)
def test_bad_perf_values_name_the_key(cfg: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        perf_settings(cfg)
    assert str(info.value).startswith(key)


def test_train_with_perf_fast_on_cpu_learns_and_checkpoints(run_cli: Any, tmp_path: Path) -> None:
    # perf=fast on a CPU: channels_last and bf16 autocast are real; cuDNN and TF32 are no-ops.
    run_cli("train", *quick("perf=fast", "trainer.accelerator=cpu", "logger=none"))
    run_dir = only_run_dir(tmp_path / "outputs")
    metrics = (run_dir / "metrics.json").read_text()
    assert "test/acc" in metrics
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()


@pytest.mark.slow
def test_compile_gives_the_same_outputs_and_loss_on_cpu() -> None:
    plain, compiled = _pair()
    apply_to_network(compiled, PerfSettings(compile=True))
    assert list(compiled.state_dict()) == list(plain.state_dict())
    torch.manual_seed(1)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    scores_a, loss_a, grads_a = _loss_and_grads(plain, x, y)
    scores_b, loss_b, grads_b = _loss_and_grads(compiled, x, y)
    torch.testing.assert_close(scores_b, scores_a, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(loss_b, loss_a, rtol=1e-5, atol=1e-6)
    for grad_b, grad_a in zip(grads_b, grads_a, strict=True):
        torch.testing.assert_close(grad_b, grad_a, rtol=1e-3, atol=1e-5)


# One real process (~10 s): the GPU set on the CPU, with the speed run's recipe at CIFAR size.
# Slow: perf=fast itself runs in process in the test above.
@pytest.mark.slow
def test_perf_fast_runs_end_to_end_on_cpu_with_the_device_loader(
    run_subprocess, tmp_path: Path
) -> None:
    result = run_subprocess(
        "train",
        "experiment=cifar10_speedrun",
        "perf=fast",
        "debug=fast_dev_run",
        "data=synthetic",
        "data.in_channels=3",
        "data.image_size=32",
        "data.batch_size=32",
        "data.source.num_samples=400",
        "logger=none",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    config = json.loads((run_dir / "run.json").read_text())["config"]
    assert config["trainer"]["precision"] == "bf16-mixed" and config["perf"]["channels_last"]
    log = (run_dir / "train.log").read_text()
    assert "bfloat16 Automatic Mixed Precision" in log
    assert "train split held on cpu, batches sliced there" in log  # channels_last + device loader
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["test/acc"] <= 1.0
