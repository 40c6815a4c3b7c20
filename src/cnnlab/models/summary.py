"""Per-layer summary of a network: output shapes, parameters, mult-adds and receptive fields.

Mult-adds (MACs) are counted by :class:`torch.utils.flop_counter.FlopCounterMode`,
which sees every convolution and matrix multiply that actually runs and reports
2 FLOPs per multiply-add; the papers' "FLOPs" and "mult-adds" are these MACs.
Only conv and linear layers count (norms, activations and poolings are left
out, as the papers leave them out).

Receptive fields are tracked through the same forward pass by a dispatch mode
that follows every tensor: a conv or pooling with kernel k, stride s and
dilation d grows the field by d(k - 1) input-grid steps and multiplies the step
by s; ops joining tensors (addition, concatenation) take the largest field of
their inputs; flattening or global pooling widens it to the whole map. The
numbers are the theoretical field along height and width, in input pixels, not
clipped to the image.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["LayerRow", "ModelSummary", "count_macs", "summarize"]

aten = torch.ops.aten

#: (field height, field width, step height, step width) in input pixels.
Field = tuple[int, int, int, int]

_CONVS = {aten.convolution, aten._convolution}
_POOLS = {aten.max_pool2d_with_indices, aten.max_pool2d, aten.avg_pool2d}
_ADAPTIVE = {aten._adaptive_avg_pool2d, aten.adaptive_max_pool2d}


@dataclass
class LayerRow:
    """One row of the summary: a module and what it produced for one input.

    Attributes:
        name: The module's path in the model (``stages.stage1.block1.conv1.conv``).
        kind: The module's class name.
        output_shape: Shape of its (first) output tensor.
        params: Parameters of the module and its children.
        macs: Conv and linear mult-adds inside the module.
        receptive_field: (height, width) of the field of one output unit, if spatial.
    """

    name: str
    kind: str
    output_shape: list[int]
    params: int
    macs: int
    receptive_field: list[int] | None


@dataclass
class ModelSummary:
    """Totals and per-layer rows for one input shape.

    Attributes:
        input_shape: The input the model ran on (N, C, H, W), N = 1.
        output_shape: Shape of the model's output.
        params: All parameters.
        trainable_params: Parameters with ``requires_grad``.
        macs: Conv and linear mult-adds for the input (per image, N = 1).
        layers: The rows, in the order the modules ran.
    """

    input_shape: list[int]
    output_shape: list[int]
    params: int
    trainable_params: int
    macs: int
    layers: list[LayerRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (``summary.json``)."""
        return asdict(self)

    def table(self, title: str | None = None) -> Table:
        """Render the rows and totals as a :class:`rich.table.Table`."""
        from rich.table import Table

        table = Table(title=title, show_footer=True, header_style="bold")
        table.add_column("Layer", footer="Total")
        table.add_column("Type")
        table.add_column("Output shape", footer=_shape(self.output_shape))
        table.add_column("Params", justify="right", footer=f"{self.params:,}")
        table.add_column("Mult-adds", justify="right", footer=f"{self.macs:,}")
        table.add_column("Receptive field", justify="right")
        for row in self.layers:
            rf = row.receptive_field
            table.add_row(
                row.name,
                row.kind,
                _shape(row.output_shape),
                f"{row.params:,}" if row.params else "-",
                f"{row.macs:,}" if row.macs else "-",
                "-" if rf is None else (str(rf[0]) if rf[0] == rf[1] else f"{rf[0]}x{rf[1]}"),
            )
        return table


def _shape(shape: Sequence[int]) -> str:
    return " x ".join(map(str, shape))


def _first_tensor(value: Any) -> torch.Tensor | None:
    """The first tensor in a (nested) output, or None."""
    return next((t for t in tree_leaves(value) if isinstance(t, torch.Tensor)), None)


@contextmanager
def _counting(model: nn.Module) -> Iterator[FlopCounterMode]:
    """Count the FLOPs of passes of ``model`` in eval mode without gradients; the model's
    mode comes back afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            yield counter
    finally:
        model.train(was_training)


def count_macs(model: nn.Module, inputs: torch.Tensor) -> int:
    """Count the conv and linear mult-adds of one forward pass on the batch ``inputs``
    (FlopCounterMode's FLOPs / 2; no gradients, eval mode).

    Example:
        >>> count_macs(nn.Linear(3, 2), torch.zeros(1, 3))
        6
    """
    with _counting(model) as counter:
        model(inputs)
    return counter.get_total_flops() // 2


class _FieldTracker(TorchDispatchMode):
    """Follows the receptive field of every tensor computed from the input."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[int, Field] = {}

    def track(self, tensor: torch.Tensor, value: Field) -> None:
        """Record ``tensor``'s field; forget it when the tensor is freed (its id may be reused)."""
        key = id(tensor)
        if key not in self.fields:
            weakref.finalize(tensor, self.fields.pop, key, None)
        self.fields[key] = value

    def field_of(self, tensor: Any) -> Field | None:
        """The recorded field of ``tensor``, or None."""
        return self.fields.get(id(tensor)) if isinstance(tensor, torch.Tensor) else None

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        known = [(t, f) for t in inputs if (f := self.field_of(t)) is not None]
        if known:
            result = _propagate(func.overloadpacket, args, known, out)
            for tensor in tree_leaves(out):
                if isinstance(tensor, torch.Tensor):
                    self.track(tensor, result)
        return out


def _pair(value: Any, default: Sequence[int]) -> tuple[int, int]:
    if value is None or (isinstance(value, Sequence) and len(value) == 0):
        value = default
    if isinstance(value, int):
        return value, value
    values = list(value)
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


def _grow(
    f: Field, kernel: tuple[int, int], stride: tuple[int, int], dil: tuple[int, int]
) -> Field:
    rf_h, rf_w, j_h, j_w = f
    return (
        rf_h + dil[0] * (kernel[0] - 1) * j_h,
        rf_w + dil[1] * (kernel[1] - 1) * j_w,
        j_h * stride[0],
        j_w * stride[1],
    )


def _whole(f: Field, tensor: torch.Tensor) -> Field:
    """The field of a unit that sees every position of ``tensor``'s map."""
    height, width = tensor.shape[-2:]
    return _grow(f, (height, width), (height, width), (1, 1))


def _propagate(
    packet: Any, args: tuple[Any, ...], known: list[tuple[torch.Tensor, Field]], out: Any
) -> Field:
    """The receptive field of ``packet``'s output, from its inputs' fields."""
    tensor, f = known[0]
    if packet in _CONVS:  # the input comes first among the known tensors
        weight = args[1]
        return _grow(f, tuple(weight.shape[-2:]), _pair(args[3], (1,)), _pair(args[5], (1,)))
    if packet in _POOLS:
        kernel = _pair(args[1], (1,))
        stride = _pair(args[2] if len(args) > 2 else None, kernel)
        dilation = _pair(args[4] if packet != aten.avg_pool2d and len(args) > 4 else None, (1,))
        return _grow(f, kernel, stride, dilation)
    if packet in _ADAPTIVE:
        (h_in, w_in), (h_out, w_out) = tensor.shape[-2:], _pair(args[1], (1,))
        kernel = (-(-h_in // h_out), -(-w_in // w_out))  # the widest window: ceil(in / out)
        stride = (max(1, h_in // h_out), max(1, w_in // w_out))
        return _grow(f, kernel, stride, (1, 1))
    first_out = _first_tensor(out)
    # Flatten or global pooling (a mean to 1x1 keeps the dims): every position feeds each unit.
    if (
        tensor.dim() >= 4
        and first_out is not None
        and (first_out.dim() < 4 or (packet == aten.mean and first_out.shape[-2:] == (1, 1)))
    ):
        return _whole(f, tensor)
    if len(known) > 1:  # add, cat, mul: a unit sees the union of its inputs' fields
        return tuple(max(values) for values in zip(*(g for _, g in known), strict=True))
    return f


def summarize(
    model: nn.Module, input_shape: Sequence[int], *, depth: int | None = None
) -> ModelSummary:
    """Run ``model`` once on zeros and summarise every layer.

    Example:
        >>> s = summarize(nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten()), (1, 1, 5, 5))
        >>> s.params, s.macs, s.layers[0].receptive_field
        (40, 324, [3, 3])

    Args:
        model: The network (put in eval mode for the pass, then restored).
        input_shape: (N, C, H, W); use N = 1 for per-image mult-adds.
        depth: None lists the leaf modules; an int lists modules that many levels
            deep (with their children's parameters and mult-adds) and shallower leaves.

    Returns:
        The :class:`ModelSummary`.
    """
    modules = dict(model.named_modules())
    root = type(model).__name__
    outputs: dict[str, Any] = {}
    order: list[str] = []

    def selected(name: str) -> bool:
        level = name.count(".") + 1
        is_leaf = not any(True for _ in modules[name].children())
        return bool(name) and (level == depth or (is_leaf and (depth is None or level < depth)))

    def hook(name: str) -> Any:
        def record(module: nn.Module, args: Any, output: Any) -> None:
            first = _first_tensor(output)
            if first is not None:
                if name not in outputs:
                    order.append(name)
                outputs[name] = (list(first.shape), tracker.field_of(first))

        return record

    handles = [
        module.register_forward_hook(hook(name))
        for name, module in modules.items()
        if selected(name) and not isinstance(module, nn.Identity)
    ]
    tracker = _FieldTracker()
    inputs = torch.zeros(*input_shape)
    try:
        with _counting(model) as counter, tracker:
            tracker.track(inputs, (1, 1, 1, 1))
            output = model(inputs)
    finally:
        for handle in handles:
            handle.remove()

    flops = counter.get_flop_counts()
    rows = []
    for name in order:
        shape, f = outputs[name]
        module = modules[name]
        rows.append(
            LayerRow(
                name=name,
                kind=type(module).__name__,
                output_shape=shape,
                params=sum(p.numel() for p in module.parameters()),
                macs=sum(flops.get(f"{root}.{name}", {}).values()) // 2,
                receptive_field=None if f is None or len(shape) < 4 else [f[0], f[1]],
            )
        )
    first_out = _first_tensor(output)
    return ModelSummary(
        input_shape=list(input_shape),
        output_shape=[] if first_out is None else list(first_out.shape),
        params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        macs=counter.get_total_flops() // 2,
        layers=rows,
    )
