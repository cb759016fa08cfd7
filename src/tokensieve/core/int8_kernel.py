"""int8 weights' small products through tokensieve's compiled kernel (`int8_linear.cpp`), opt-in with the decode
kernel (`decode_kernel=True`, `--decode-kernel`).

Under `--weights int8` a decode step's linears multiply one to a few rows by int8 codes. torch's fused product
rounds those rows to bfloat16, which an AVX2 CPU has no instructions for; the compiled product widens each code
to float32 in registers and multiplies the float32 rows as they are, reading every code once for all rows. The
codes and scales are the same, so it is the same int8 model with unrounded activations: its logits differ from
the default path's by that rounding only (tests/test_int8_kernel.py), so it is opt-in like the attention kernel.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from tokensieve.core.kernels import optional
from tokensieve.weights import Int8Linear


@contextmanager
def int8_products(model: torch.nn.Module, enabled: bool) -> Iterator[int]:
    """Inside the block every `Int8Linear` of `model` takes its small float32 CPU products through the compiled
    kernel; yields how many layers do (0 when not enabled, off CPU, without int8 weights or where the kernels
    cannot be built: the default products then run). Each layer's product is unset after the block."""
    linears = [m for m in model.modules() if isinstance(m, Int8Linear) and m.weight.device.type == "cpu"]
    kernels = optional() if enabled and linears else None
    linears = linears if kernels is not None else []
    for linear in linears:
        linear.product = kernels.int8_linear
    try:
        yield len(linears)
    finally:
        for linear in linears:
            linear.product = None
