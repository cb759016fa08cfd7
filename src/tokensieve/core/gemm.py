"""Wide small forwards (a draft tree's 13 tokens, a prefill piece) nearer their floor on CPU: inside `packed_linears`,
every `nn.Linear` of the model multiplies an input of at least `from_rows` rows through oneDNN, with its weight
prepacked once per model; fewer rows keep today's aten path, so a one-token decode step is unchanged.

Measured by `tokensieve speed gemm` (docs/DECODE.md): on Qwen2.5-Coder-0.5B a 13-row forward's linears cost 3.06
one-token steps on aten and 1.75 prepacked, while one or two rows are faster on aten. The products are the same
fp32 weights in another summation order: equal to aten's within float rounding (about 1e-6 relative), as aten's own
13-row and 1-row products already are to each other. The prepacked weights are a second copy of every linear weight,
kept while the model lives (`packed_bytes`). CPU only: on other devices the block changes nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

FROM_ROWS = 3  # aten below: one and two rows are faster there (docs/DECODE.md)
_PACKED: weakref.WeakKeyDictionary[nn.Linear, torch.Tensor] = weakref.WeakKeyDictionary()


def available(model: nn.Module) -> bool:
    return model.device.type == "cpu" and torch.backends.mkldnn.is_available()


def pack(weight: torch.Tensor) -> torch.Tensor:
    """An fp32 weight [out, in] in oneDNN's layout (the only place that calls torch's oneDNN ops, with `product`)."""
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach())


def product(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x [rows, in] times a `pack`ed weight, plus bias: [rows, out]."""
    return torch.ops.mkldnn._linear_pointwise(x.contiguous(), packed, bias, "none", [], "")


def packed_weight(linear: nn.Linear) -> torch.Tensor:
    """`linear`'s weight in oneDNN's layout, packed on first use and kept as long as the module lives."""
    packed = _PACKED.get(linear)
    if packed is None:
        packed = _PACKED[linear] = pack(linear.weight)
    return packed


def fp32_linears(model: nn.Module) -> list[nn.Linear]:
    """The linear layers whose weights can be prepacked: float32 ones."""
    return [m for m in model.modules() if isinstance(m, nn.Linear) and m.weight.dtype == torch.float32]


def prepack(model: nn.Module) -> None:
    """Pack every fp32 linear weight of a CPU model now, not in the first forward that needs it."""
    if available(model):
        for linear in fp32_linears(model):
            packed_weight(linear)


def packed_bytes(model: nn.Module) -> int:
    """Bytes of the prepacked copies `model` holds now."""
    return sum(_PACKED[m].nbytes for m in model.modules() if isinstance(m, nn.Linear) and m in _PACKED)


def _dispatching(linear: nn.Linear, from_rows: int):
    weight = packed_weight(linear)

    def forward(x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1]
        if rows < from_rows or x.dtype != torch.float32:
            return F.linear(x, linear.weight, linear.bias)
        out = product(x.reshape(rows, x.shape[-1]), weight, linear.bias)
        return out.reshape(*x.shape[:-1], out.shape[-1])

    return forward


@contextmanager
def packed_linears(model: nn.Module, from_rows: int = FROM_ROWS) -> Iterator[bool]:
    """Run the block with the dispatch above; yields whether it is active (False off CPU or without oneDNN, or for
    weights that are not fp32). Every linear's own forward is back after the block."""
    linears = fp32_linears(model)
    if not available(model) or not linears:
        yield False
        return
    for linear in linears:
        linear.forward = _dispatching(linear, from_rows)  # an attribute: shadows the class's forward
    try:
        yield True
    finally:
        for linear in linears:
            del linear.forward
