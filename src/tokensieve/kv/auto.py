"""`auto`: protected sinks and per-layer budgets read from a saved `tokensieve inspect` report."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

from torch import Tensor

from tokensieve.core.policy import KVPolicy, Policy
from tokensieve.core.view import LayerView
from tokensieve.errors import TokensieveError


def weighted_split(total: int, weights: list[float], floor: int, ceiling: int) -> list[int]:
    """Integers in [floor, ceiling], proportional to `weights` where the bounds allow, summing to exactly
    total x len(weights): sizes are clamp(lam * w, floor, ceiling) with lam found by bisection, then rounded
    to the largest remainders."""
    n = len(weights)
    budget = total * n
    if not floor * n <= budget <= ceiling * n:
        raise TokensieveError(f"cannot split {budget} tokens over {n} layers within [{floor}, {ceiling}] each")
    weights = [max(w, 1e-9) for w in weights]  # a zero weight still gets the floor

    def sizes(lam: float) -> list[float]:
        return [min(max(lam * w, floor), ceiling) for w in weights]

    lo, hi = 0.0, ceiling / min(weights)
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sum(sizes(mid)) < budget else (lo, mid)
    exact = sizes(hi)
    whole = [math.floor(s) for s in exact]
    order = sorted(range(n), key=lambda i: whole[i] - exact[i])  # largest remainder first
    for i in order[: max(0, budget - sum(whole))]:
        whole[i] += 1
    return whole


REPORT_KEYS = {"version", "layers", "sinks", "n_layers", "layer_types"}


def load_report(path: str | Path) -> dict:
    """A report saved by `tokensieve inspect --out` as a dict, with one clear error if it is missing or not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TokensieveError(f"cannot read the inspect report {path}: {err}") from None
    if not isinstance(data, dict) or not data.keys() >= REPORT_KEYS:
        raise TokensieveError(f"{path} is not a tokensieve inspect report (run `tokensieve inspect --out DIR`)")
    return data


@dataclass(frozen=True)
class Plan:
    sinks: int  # leading tokens to protect
    dormancy: dict[int, float]  # compressed layer index -> mean share of its heads' attention on sinks
    layers: list[int]  # the layers a SieveCache compresses (full attention), in order


def plan_from_report(data: dict) -> Plan:
    primary = [s["position"] for s in data["sinks"] if s.get("kind") == "primary"]
    heads: dict[int, list[float]] = {}
    for h in data.get("heads", []):
        heads.setdefault(h["layer"], []).append(h["sink_fraction"])
    full = [i for i, kind in enumerate(data["layer_types"]) if kind == "full_attention"]
    if not full or any(i not in heads for i in full):
        raise TokensieveError("the inspect report has no per-head statistics for the full-attention layers")
    return Plan(sinks=max(primary) + 1 if primary else 1,
                dormancy={i: sum(heads[i]) / len(heads[i]) for i in full}, layers=full)


@dataclass
class AutoKV(KVPolicy):
    """Diagnostics-driven KV budgets: as many protected sinks as the report's primary sinks (StreamingLLM,
    arXiv 2309.17453, fixes 4), and per-layer budgets that give layers whose heads are dormant (attention
    parked on sinks; Guo et al., arXiv 2410.13835) less and active layers more, same total as uniform.
    Tokens are ranked by another registered policy's scorer (`scorer`)."""

    name = "auto"
    sweeps = False  # needs a saved head report

    composes: ClassVar[dict[str, type[Policy]]] = {"scorer": KVPolicy}
    report: str = ""  # path of a JSON report written by `tokensieve inspect --out DIR` (DIR/report.json)
    scorer: KVPolicy | str = "snapkv"  # a KV policy's name: `tokensieve.make` builds it
    mix: float = 0.5  # 0 = uniform budgets; 1 = a fully dormant layer gets nothing above the protected floor
    report_sinks: bool = True  # protect the report's sink count instead of budget.sinks

    def __post_init__(self) -> None:
        super().__post_init__()

        if not self.report:
            raise TokensieveError("policy 'auto' needs report=PATH, a report saved by `tokensieve inspect --out`")
        if not 0 <= self.mix <= 1:
            raise TokensieveError(f"auto: mix {self.mix} is outside [0, 1]")
        if not isinstance(self.scorer, KVPolicy):
            raise TokensieveError(f"auto: scorer {self.scorer!r} is not built; use tokensieve.make('auto', ...)")
        self.plan = plan_from_report(load_report(self.report))
        if self.report_sinks:
            self.budget = replace(self.budget, sinks=self.plan.sinks)
        self.inner = replace(self.scorer, budget=self.budget)

    def accumulate(self, view: LayerView) -> None:
        self.inner.accumulate(view)

    def accumulates(self) -> bool:
        return self.inner.accumulates()

    def prompt_window(self) -> int:
        return self.inner.prompt_window()

    def score(self, view: LayerView) -> Tensor:
        return self.inner.score(view)

    def capacities(self, prompt_tokens: int, n_layers: int) -> list[int]:
        if n_layers != len(self.plan.layers):
            raise TokensieveError(
                f"auto: the report covers {len(self.plan.layers)} compressed layers but the model has {n_layers}; "
                "inspect the same model"
            )
        keep = self.budget.tokens(prompt_tokens)
        floor = sum(self.budget.protect(keep))
        weights = [1 - self.mix * self.plan.dormancy[i] for i in self.plan.layers]
        return weighted_split(keep, weights, floor, max(keep, prompt_tokens))
