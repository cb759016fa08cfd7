"""What an M-token forward costs in the model's own linear layers, per path, against the arithmetic floor.

Every decoder linear (q, k, v, o, gate, up, down; the LM head separately, as `logits_to_keep` decides how many rows
reach it) is timed at each M on several paths, interleaved within each repeat so that drift hits every path alike:
- `aten`: `F.linear` on the fp32 weights, today's path (MKL sgemm on this CPU build);
- `onednn`: the same fp32 weights prepacked once for oneDNN (`torch.ops.mkldnn`); numerically close to, not
  bit-identical with, `aten`;
- `bf16`: `F.linear` on bfloat16 copies of the weights and input;
- `int8`: dynamic int8 quantization (fbgemm, per-tensor weights, int8 activations): a different model, listed for
  the speed it would buy;
- `int8w`: `--weights int8` (`tokensieve.weights.Int8Linear`): int8 codes, one scale per output channel, bf16
  activations; the fused kernel below `FUSED_BELOW` rows, a bf16 GEMM of the codes above.

A forward's linear time is the sum over shapes of (median time x layers holding that shape). `steps` is that time
over `aten`'s at M = 1: how many one-token steps an M-token forward costs. `floor` is the fp32 floor in the same
unit: the larger of the forward's FLOPs at the best fp32 rate measured in this run (large-M `aten`) and its weight
bytes at the best read rate a one-row product reached in this run, so no fp32 path goes far below it. CPU only:
on CUDA, small-M products are not the bottleneck this measures.
"""

from __future__ import annotations

import random
import statistics
import warnings
from collections import Counter
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tokensieve.core import gemm
from tokensieve.core.memory import now
from tokensieve.errors import TokensieveError
from tokensieve.weights import Int8Linear

PATHS = ("aten", "onednn", "bf16", "int8", "int8w")
ROWS = (1, 2, 4, 8, 13, 16, 32, 64)
PEAK_ROWS = 512  # the rate that defines the floor: aten at this M on the largest decoder shape


@dataclass(frozen=True)
class Shape:
    out_features: int
    in_features: int
    head: bool = False  # the LM head (reached by logits_to_keep rows, not always by all M)


def linear_shapes(model: nn.Module) -> Counter[Shape]:
    """How many linears of each shape one forward runs: the decoder's, and the LM head once."""
    head = model.get_output_embeddings()
    shapes: Counter[Shape] = Counter()
    for module in model.modules():
        if isinstance(module, nn.Linear) and module is not head:
            shapes[Shape(module.out_features, module.in_features)] += 1
    shapes[Shape(head.weight.shape[0], head.weight.shape[1], head=True)] += 1
    return shapes


class Kernels:
    """One shape's weights on every path, built once; `run(path, x)` is one product."""

    def __init__(self, weight: torch.Tensor, paths: tuple[str, ...]) -> None:
        self.weight = weight.float().contiguous()
        self.bf16 = self.weight.bfloat16() if "bf16" in paths else None
        # one oneDNN layout for every M (packing per M measured no faster here, at 8x the memory)
        self.packed = gemm.pack(self.weight) if "onednn" in paths else None
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        linear.weight.data = self.weight
        self.int8w = Int8Linear(linear) if "int8w" in paths else None
        self.int8 = None
        if "int8" in paths:
            with warnings.catch_warnings():  # torch.ao's dynamic quantization is deprecated in favour of torchao
                warnings.simplefilter("ignore")
                self.int8 = torch.ao.quantization.quantize_dynamic(nn.Sequential(linear), {nn.Linear}, torch.qint8)

    def run(self, path: str, x: torch.Tensor) -> torch.Tensor:
        if path == "aten":
            return F.linear(x, self.weight)
        if path == "onednn":
            return gemm.product(x, self.packed)
        if path == "bf16":
            return F.linear(x.bfloat16(), self.bf16)
        if path == "int8w":
            return self.int8w(x)
        return self.int8(x)


def time_once(fn, x: torch.Tensor) -> float:
    start = now()
    fn(x)
    return now() - start


@torch.inference_mode()
def gemm_speed(model: nn.Module, rows: tuple[int, ...] = ROWS, paths: tuple[str, ...] = PATHS,
               repeats: int = 20, seed: int = 0) -> list[dict]:
    """One row per (path, M): the forward's linear time in ms, in one-token aten steps, and the floor."""
    if model.device.type != "cpu":
        raise TokensieveError("speed gemm measures CPU GEMM paths; on CUDA small-M products are not the bottleneck")
    if not torch.backends.mkldnn.is_available() and "onednn" in paths:
        raise TokensieveError("this torch build has no oneDNN: leave out the onednn path")
    shapes = linear_shapes(model)
    weights = {}
    for module in model.modules():
        if isinstance(module, nn.Linear):
            key = Shape(module.out_features, module.in_features, module is model.get_output_embeddings())
            weights.setdefault(key, module.weight)
    kernels = {shape: Kernels(weights[shape], paths) for shape in shapes}
    generator = torch.Generator().manual_seed(seed)
    inputs = {(shape.in_features, m): torch.randn(m, shape.in_features, generator=generator)
              for shape in shapes for m in (*rows, PEAK_ROWS)}
    order = [(path, m, shape) for path in paths for m in rows for shape in shapes]
    times: dict[tuple, list[float]] = {key: [] for key in order}
    biggest = max((s for s in shapes if not s.head), key=lambda s: s.out_features * s.in_features)
    peak: list[float] = []
    shuffle = random.Random(seed)
    for key in order:  # warm-up: first calls allocate and pack
        kernels[key[2]].run(key[0], inputs[(key[2].in_features, key[1])])
    for _ in range(repeats):
        shuffle.shuffle(order)
        for path, m, shape in order:
            times[(path, m, shape)].append(time_once(lambda x, k=kernels[shape], p=path: k.run(p, x),
                                                     inputs[(shape.in_features, m)]))
        peak.append(time_once(lambda x: F.linear(x, kernels[biggest].weight), inputs[(biggest.in_features,
                                                                                       PEAK_ROWS)]))
    rate = 2 * PEAK_ROWS * biggest.out_features * biggest.in_features / statistics.median(peak)  # FLOP/s
    first = paths[0] if "aten" not in paths else "aten"
    bandwidth = max(s.out_features * s.in_features * 4 / statistics.median(times[(first, min(rows), s)])
                    for s in shapes)  # bytes/s: the best weight-read rate a one-row product reached
    weight_bytes = sum(s.out_features * s.in_features * 4 * n for s, n in shapes.items())
    forward = {(path, m): sum(statistics.median(times[(path, m, s)]) * n for s, n in shapes.items())
               for path in paths for m in rows}
    step = forward[("aten", 1)] if "aten" in paths else forward[(paths[0], 1)]
    result = []
    for m in rows:
        flops = sum(2 * m * s.out_features * s.in_features * n for s, n in shapes.items())
        floor = max(flops / rate, weight_bytes / bandwidth)  # every weight read once, or every FLOP done
        for path in paths:
            result.append({"path": path, "rows": m, "linear_ms": round(forward[(path, m)] * 1e3, 3),
                           "steps": round(forward[(path, m)] / step, 2), "floor_steps": round(floor / step, 2),
                           "gflops_peak": round(rate / 1e9, 1), "read_gb_s": round(bandwidth / 1e9, 1)})
    return result
