"""The worker's view of which persistent-batch rows carry a tokensieve rule, kept by `batch.SieveRequests`
(vLLM tells logits processors every row it adds, removes or moves) and read by the attention backend."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from tokensieve.vllm.plan import Hole, Rule


@dataclass
class RowState:
    """Where the row's hole is follows from its length alone (`Hole.hidden_at`), so nothing here decides what the
    kernel sees: a row vLLM drops from the batch for a step and adds back keeps attending around its hole."""

    rule: Rule
    hole: Hole | None  # planned when the row is added (`plan.plan`), the same one the scheduler frees; None for a
    # selector (`Rule.selects`), which frees nothing
    queries: dict[str, Tensor] = field(default_factory=dict)  # layer name -> last queries, for the next compaction
    positions: dict[str, Tensor] = field(default_factory=dict)  # layer name -> kept positions [kv_heads, kept] (trace)


ROWS: dict[int, RowState] = {}  # persistent-batch row index -> state, in this worker process
