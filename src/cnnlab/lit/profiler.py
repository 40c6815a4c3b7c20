"""The profiler a Trainer gets when the config asks for none: nothing, at no cost.

Lightning wraps every hook call of every callback in ``trainer.profiler.profile(name)``.
Its default, ``PassThroughProfiler``, records nothing but still builds a generator-based
context manager each time: with ten callbacks that is about 90 per training step, a few
percent of a small network's step on a CPU. :class:`NoProfiler` hands back one shared
``nullcontext`` instead. ``trainer.profiler=simple`` (``debug=profiler``) and Lightning's
other profilers are used as configured.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from pytorch_lightning.profilers import PassThroughProfiler
from typing_extensions import override

_NOTHING: AbstractContextManager[None] = nullcontext()


class NoProfiler(PassThroughProfiler):
    """``PassThroughProfiler`` whose ``profile`` costs one attribute lookup."""

    @override
    def profile(self, action_name: str) -> AbstractContextManager[None]:  # type: ignore[override]
        return _NOTHING
