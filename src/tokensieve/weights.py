"""Weight precision, an axis of its own (`--weights fp32|bf16|int8`), orthogonal to every method and KV dtype.

- `fp32`: the model as shipped (the default; every stored result ran it).
- `bf16`: the whole model in bfloat16.
- `int8`: weight-only int8 for every linear layer, the LM head included. One symmetric scale per output channel
  (absmax / 127), so no outlier channel stretches another's grid. Activations are not quantized: each product
  runs on bfloat16 activations and int8 codes, through torch's `_weight_int8pack_mm` (the CPU and CUDA kernel
  gpt-fast and torchao call) for a few rows, or as a bf16 GEMM of the codes for many (prefill), and the result
  returns to the compute dtype, fp32. Everything else (norms,
  attention, embeddings, the KV cache) stays fp32. With the decode kernel (`--decode-kernel`,
  `core.int8_kernel`), one to 16 float32 rows on CPU multiply the same codes and scales through tokensieve's
  compiled product instead, without rounding the activations to bfloat16.

Why weight-only: torch's dynamic int8 quantization (fbgemm, int8 activations too) decodes 2.35x faster than fp32
on Qwen-0.5B here, but one activation scale per product spreads a prompt's outliers over all its tokens: it picked
fp32's next token on 62 % of a 400-token essay prompt (SmolLM2: 42 %). Weight-only int8 picks it on 97 % (94 %) and
decodes 1.6x (1.4x) faster (`scripts/int8_choice.py`, docs/WEIGHTS.md).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import torch
import torch.nn.functional as F
from torch import nn

from tokensieve.errors import TokensieveError

WEIGHTS = ("fp32", "bf16", "int8")
ACTIVATIONS = torch.bfloat16  # what an int8 product multiplies its codes with
# Fewer rows than this take the fused kernel; more (prefill) take the codes as bf16 through a bf16 GEMM, which is
# faster there: on Qwen-0.5B's [4864 x 896] here, 0.2 against 1.2 ms for one row, 1.5 against 1.4 ms for 13, 290
# against 41 ms for 4096 (`tokensieve speed gemm` has the whole curve).
FUSED_BELOW = 16
COMPILED_ROWS = 16  # the most rows a compiled product (`Int8Linear.product`) takes


def check_weights(weights: str) -> None:
    if weights not in WEIGHTS:
        raise TokensieveError(f"unknown weights '{weights}': use one of {', '.join(WEIGHTS)}")


def compute_dtype(weights: str) -> torch.dtype:
    """The dtype a model loaded with `weights` computes in."""
    check_weights(weights)
    return torch.bfloat16 if weights == "bf16" else torch.float32


class Int8Linear(nn.Module):
    """A linear layer with int8 codes [out, in] (`weight`) and one scale per output channel; see the module doc.

    `product`: when set (`core.int8_kernel.int8_products`), float32 CPU inputs of at most `COMPILED_ROWS` rows
    go through it as product(rows [m, in], codes, scales as float32) -> [m, out], activations unrounded."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach()
        scales = weight.abs().amax(dim=1).clamp(min=torch.finfo(weight.dtype).tiny) / 127
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight", (weight / scales[:, None]).round().clamp(-127, 127).to(torch.int8))
        self.register_buffer("scales", scales.to(ACTIVATIONS))
        self.register_buffer("float_scales", self.scales.float(), persistent=False)  # the same values, widened
        self.bias = linear.bias
        self.fused = fused_kernel(str(weight.device))
        self.product: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        if self.product is not None and x.dtype == torch.float32 and x.device.type == "cpu" \
                and flat.shape[0] <= COMPILED_ROWS:
            out = self.product(flat, self.weight, self.float_scales)
        else:
            rows = flat.to(ACTIVATIONS)
            if self.fused and rows.shape[0] < FUSED_BELOW:
                out = torch._weight_int8pack_mm(rows, self.weight, self.scales)
            else:  # the codes as bf16 (exact: |code| <= 127), a bf16 GEMM, then the scales
                out = F.linear(rows, self.weight.to(ACTIVATIONS)) * self.scales
            out = out.to(x.dtype)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


@cache
def fused_kernel(device: str) -> bool:
    """Whether this device's torch build has the fused int8 product (CPU and CUDA do)."""
    probe = torch.ones(1, 8, dtype=ACTIVATIONS, device=device)
    try:
        torch._weight_int8pack_mm(probe, torch.ones(8, 8, dtype=torch.int8, device=device),
                                  torch.ones(8, dtype=ACTIVATIONS, device=device))
    except (NotImplementedError, RuntimeError):
        return False
    return True


def quantize_linears(model: nn.Module) -> int:
    """Replace every `nn.Linear` of `model` by an `Int8Linear`, in place; returns how many."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, Int8Linear(child))
                replaced += 1
    return replaced


def apply_weights(model: nn.Module, weights: str) -> nn.Module:
    """`model` (loaded in `compute_dtype(weights)`) with its linear layers stored as `weights` say."""
    if weights == "int8":
        quantize_linears(model)
    return model


def precision_of(model: nn.Module) -> str:
    """The `WEIGHTS` name of a loaded model's linear layers: int8 if any is an `Int8Linear`, else their dtype's."""
    if any(isinstance(m, Int8Linear) for m in model.modules()):
        return "int8"
    dtypes = {m.weight.dtype for m in model.modules() if isinstance(m, nn.Linear)}
    return "fp32" if dtypes <= {torch.float32} else "bf16" if dtypes == {torch.bfloat16} else "mixed"


def weight_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer `model` holds (int8 codes and their scales included), shared ones once."""
    seen = {t.data_ptr(): t.nbytes for t in (*model.parameters(), *model.buffers())}
    return sum(seen.values())
