"""Every kind of grid case behind one protocol: how a case is recognised, named and run. `bench/cell.py`
dispatches through `KINDS` (the first kind that matches a case), instead of an if-chain per call site.

- `encoder`: retrieval and throughput of an encoder method (`encoder_cells`);
- `decode`: lossless tree decoding against greedy (`decode_cells`);
- `decoder task`: needle, fidelity, streaming, RULER and code under a KV policy or selector (`tasks`,
  `prompts`), under a kvpress press through its worker (`peers.kvpress`), or on transformers' quantized cache
  (`peers.hf_cache`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tokensieve.bench import decode_cells, encoder_cells, tasks
from tokensieve.bench.peers import hf_cache, kvpress

Outcome = tuple[float | None, dict]  # (quality, metrics) of one cell


@dataclass(frozen=True)
class CaseKind:
    name: str
    matches: Callable[[dict], bool]
    case_id: Callable[[dict], str]
    run: Callable[[str, dict, str, float, int], Outcome]  # (model, case, method, budget, repeats)
    warm_up: bool = True  # a decoder model runs one untimed generation per process before its first cell


def run_decoder_task(model: str, case: dict, method: str, budget: float, repeats: int) -> Outcome:
    if kvpress.is_peer(method):
        return kvpress.run_peer(model, case, method, budget, repeats)
    if hf_cache.is_peer(method):
        return hf_cache.run_peer(model, case, method, budget, repeats)
    return tasks.run_local(model, case, method, budget, repeats)


KINDS = (
    CaseKind("encoder", encoder_cells.is_encoder_case, encoder_cells.case_id, encoder_cells.run, warm_up=False),
    CaseKind("decode", decode_cells.is_decode_case, decode_cells.case_id, decode_cells.run),
    CaseKind("decoder task", lambda case: True, tasks.case_id, run_decoder_task),  # the rest: needle … code
)


def kind_of(case: dict) -> CaseKind:
    return next(kind for kind in KINDS if kind.matches(case))
