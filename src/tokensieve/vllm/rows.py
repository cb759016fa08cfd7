"""The worker's view of which persistent-batch rows carry a tokensieve rule, kept by `requests.SieveRequests`
(vLLM tells logits processors every row it adds, removes or moves) and read by the attention backend."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from tokensieve.vllm.plan import Hole, Rule


@dataclass
class Chunk:
    """One prefill chunk of one layer, kept until the prompt's last chunk: its keys, values and last queries."""

    keys: Tensor
    values: Tensor
    queries: Tensor


@dataclass
class RowState:
    rule: Rule
    hole: Hole  # planned when the row is added (`plan.plan`), the same one the scheduler frees
    compacted: bool = False  # once true, every step attends around the hole
    chunks: dict[str, list[Chunk]] = field(default_factory=dict)  # layer name -> earlier prefill chunks


ROWS: dict[int, RowState] = {}  # persistent-batch row index -> state, in this worker process
