"""Encoder cases in the bench grid: their ids, and running one (model, case, method, keep) cell.

A case is {"task": "encoder", "kind": "retrieval", "dataset": "humaneval" | "corpus"} or {"task": "encoder",
"kind": "throughput", "tokens": 128 | 256 | 512}. The plain model is the method "none"."""

from __future__ import annotations

from tokensieve.errors import TokensieveError

TASK = "encoder"
REFERENCE = "none"


def is_encoder_case(case: dict) -> bool:
    return case.get("task") == TASK


def encoder_methods() -> set[str]:
    """The plain model, every method, and every method on a searched schedule ("tome+search")."""
    from tokensieve.encoder import METHODS
    from tokensieve.encoder.measure import SEARCHED

    return {REFERENCE, *METHODS, *(m + SEARCHED for m in METHODS)}


def case_id(case: dict) -> str:
    if case["kind"] == "retrieval":
        return f"encoder/retrieval/{case['dataset']}"
    if case["kind"] == "throughput":
        return f"encoder/throughput/{case['tokens']}"
    raise TokensieveError(f"unknown encoder case kind '{case['kind']}'")


def retrieval_cases(datasets=("humaneval", "corpus")) -> list[dict]:
    return [{"task": TASK, "kind": "retrieval", "dataset": d} for d in datasets]


def throughput_cases(lengths=(128, 256, 512)) -> list[dict]:
    return [{"task": TASK, "kind": "throughput", "tokens": t} for t in lengths]


def run(model: str, case: dict, method: str, keep: float, repeats: int = 1) -> tuple[float | None, dict]:
    """(quality, metrics): recall@1 with per-query hits, reciprocal ranks and cosines for retrieval; sentences/s
    (median of `repeats`, at least 3) for throughput."""
    from tokensieve.encoder import measure

    if case["kind"] == "retrieval":
        metrics = measure.retrieval(model, case["dataset"], method, keep)
        return metrics["recall_at_1"], metrics
    metrics = measure.throughput(model, method, keep, case["tokens"], repeats=max(repeats, 3))
    return None, metrics
