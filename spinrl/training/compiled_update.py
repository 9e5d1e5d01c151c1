"""``compile=True``: an algorithm's whole update step (losses, backward passes, optimiser steps, Polyak
averaging) run through ``torch.compile``.

Each off-policy algorithm writes its update as a plain function and adds one line,
``update = compile_update(update, compile, device, logger)``; with ``compile=False`` that line hands
the function back untouched. The algorithm is the same either way: the same losses and the same
random draws (inductor's ``fallback_random`` makes a compiled update draw SAC's action noise and
TD3's target noise from torch's generator, as the eager code does), so a seeded compiled run follows
the eager one up to floating-point rounding (tests/training/test_compiled_update.py checks it).

What the compiled function becomes (torch 2.13, checked with ``TORCH_LOGS=graph_breaks``):

- Each loss is compiled together with its backward pass, and the Polyak average is a graph of its own
  (three graphs for SAC, one per loss and one for the targets). TorchInductor fuses the element-wise
  work around the matrix products (activations, targets, the loss) into generated kernels; the
  matrix products stay oneDNN/MKL's (CPU) or cuBLAS's (GPU).
- Between the graphs, PyTorch runs eagerly what torch.compile does not trace: ``zero_grad``, the
  ``backward()`` call that starts the compiled backward graph, the optimiser steps (PyTorch ends a
  graph around every ``optimizer.step()`` on purpose, and fused Adam is one kernel already), the
  freezing of the critic for the policy step, and :class:`spinrl.training.offpolicy.UpdateStats`. No
  ``.item()`` or logging call sits in a graph.
- On a CUDA GPU, ``mode="reduce-overhead"`` also records the graphs as CUDA graphs, replayed with one
  launch instead of one launch per kernel: what limits small networks on a GPU is the launches.
  Recorded graphs overwrite their outputs on the next replay, which is why UpdateStats keeps copies.
  On a GPU, both SAC and TD3 ran faster compiled (benchmarks/results/offpolicy-throughput-cuda.md).

On a CPU it does not pay (benchmarks/results/offpolicy-throughput.md, profile-compile.md): two
thirds of an update are matrix products, which compiling leaves as they are, and TorchInductor's
kernel for the ReLU masks that the policy step's backward pass keeps (a bool tensor per critic
layer) is many times slower than PyTorch's own: torch 2.13's vector headers convert a float mask to
bools one lane at a time, 64 lanes for every 16 values. That kernel alone costs more than the fusion
saves.

Compiling costs time up front, once per process (and again after ``--resume``), logged when it
happens: tens of seconds on a small CPU with an empty TorchInductor cache, much less once an earlier
run of the same networks has left its kernels in the cache (benchmarks/results/code-measurements.md,
docs/user/running.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import torch

from spinrl.common.errors import UserError
from spinrl.record.logger import EpochLogger


def compile_options(device: torch.device) -> dict[str, Any]:
    """Inductor settings: CUDA graphs only where they exist (the "reduce-overhead" mode on CUDA), and
    torch's own random-number kernels, so that compiled and eager runs draw the same numbers."""
    mode = "reduce-overhead" if device.type == "cuda" else "default"
    return {**torch._inductor.list_mode_options(mode), "fallback_random": True}


def compile_update(
    update: Callable[..., None], enabled: bool, device: torch.device, logger: EpochLogger | None = None
) -> Callable[..., None]:
    """``update`` compiled with ``torch.compile`` when ``enabled``, else ``update`` itself.

    The first call with each combination of non-tensor arguments (TD3's ``update_policy`` True or
    False) compiles a variant; its wall-clock is logged through ``logger`` as the compile time, and
    their sum kept as the returned function's ``compile_seconds``.
    """
    if not isinstance(enabled, bool):
        raise UserError(f"compile={enabled!r} is not valid: it must be True or False")
    if not enabled:
        return update
    _drop_profiler_notes()
    compiled = torch.compile(update, options=compile_options(device))
    seen: set[tuple] = set()
    on_cuda = device.type == "cuda"

    def compiled_update(*args: Any, **kwargs: Any) -> None:
        # Tell the CUDA-graph runtime that a new step begins: the previous step's outputs may now be
        # overwritten (nothing holds them but UpdateStats' copies).
        if on_cuda:
            torch.compiler.cudagraph_mark_step_begin()
        flags = {k: v for k, v in kwargs.items() if not isinstance(v, dict | torch.Tensor)}
        variant = (*(v for v in args if not isinstance(v, dict | torch.Tensor)), *flags.items())
        if variant in seen:
            return compiled(*args, **kwargs)
        start = time.perf_counter()
        result = compiled(*args, **kwargs)
        seen.add(variant)
        seconds = time.perf_counter() - start
        compiled_update.compile_seconds += seconds
        if logger is not None:
            what = f" with {', '.join(f'{k}={v}' for k, v in flags.items())}" if flags else ""
            logger.log_message(f"compile: the first update{what} took {seconds:.1f} s, {_why(seconds)}")
        return result

    compiled_update.compile_seconds = 0.0  # the first calls' seconds, as logged (read by benchmarks)
    return compiled_update


# The loggers of TorchDynamo that note, once per process, that it leaves out the profiler's
# record_function blocks around every optimiser.step(). Nobody profiles a training run here, so the
# note says nothing to act on; other warnings of these loggers pass.
_PROFILER_NOTE_LOGGERS = ("torch._dynamo.variables.ctx_manager", "torch._dynamo.variables.torch")


def _is_not_profiler_note(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(("Profiler record function", "Profiler function"))


def _drop_profiler_notes() -> None:
    for name in _PROFILER_NOTE_LOGGERS:
        logger = logging.getLogger(name)
        if _is_not_profiler_note not in logger.filters:
            logger.addFilter(_is_not_profiler_note)


# Below this, a first call cannot have compiled anything: its graphs came from an earlier variant (TD3's
# critic graph is the same with update_policy True or False) or from TorchInductor's cache on disk.
_COMPILED_ALREADY_SECONDS = 1.0


def _why(seconds: float) -> str:
    if seconds < _COMPILED_ALREADY_SECONDS:
        return "its graphs were compiled already (an earlier update or the compile cache)"
    return "most of it compiling; later updates run the compiled code"
