"""Rows -> one summary line per (model, task, context length, method, budget): quality and cost, aggregated
honestly (means of per-case quality, medians of timings, failed cells counted). Lengths are never pooled: cost
grows with the context, and a suite may run its longest cases for only some methods."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class Line:
    model: str
    task: str
    tokens: int
    method: str
    budget: float
    n: int = 0
    failed: int = 0
    error: str = ""
    quality: float | None = None
    kv_frac: float | None = None
    kv_mb: float | None = None
    prefill_s: float | None = None
    decode_tok_s: float | None = None
    peak_rss_mb: float | None = None
    gflops: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def family(self) -> str:
        return "kvpress" if self.method.startswith("kvpress:") else "tokensieve"


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def latest_version(rows: list[dict]) -> list[dict]:
    """Keep, per cell identity, the row of the newest code version present (older versions stay in the DB)."""
    best: dict[tuple, dict] = {}
    for row in rows:
        ident = (row["model"], row["case_id"], row["method"], row["budget"])
        if ident not in best or row.get("created", 0) >= best[ident].get("created", 0):
            best[ident] = row
    return list(best.values())


def summarise(rows: list[dict]) -> list[Line]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["model"], row["task"], context_tokens(row), row["method"], row["budget"])].append(row)
    lines = []
    for (model, task, tokens, method, budget), group in sorted(groups.items()):
        ok = [r for r in group if r["status"] == "ok"]
        bad = [r for r in group if r["status"] != "ok"]
        m = [r["metrics"] for r in ok]
        line = Line(model, task, tokens, method, budget, n=len(ok), failed=len(bad),
                    error=bad[0]["metrics"].get("error", "")[:120] if bad else "")
        if m:
            line.quality = _mean([r["quality"] for r in ok])
            line.kv_frac = _mean([x["kv_bytes_kept"] / x["kv_bytes_full"] for x in m if x.get("kv_bytes_full")])
            line.kv_mb = _mean([x.get("kv_bytes_kept") for x in m])
            line.kv_mb = line.kv_mb / 2**20 if line.kv_mb is not None else None
            line.prefill_s = _median([x.get("prefill_s") for x in m])
            line.decode_tok_s = _median([x.get("decode_tok_s") for x in m])
            line.peak_rss_mb = _median([x.get("peak_rss_mb") for x in m])
            flops = _mean([x.get("attention_flops") for x in m])
            line.gflops = flops / 1e9 if flops is not None else None
            for name in ("kl", "ppl_ratio", "ppl", "tok_s", "seconds"):
                value = _mean([x.get(name) for x in m])
                if value is not None:
                    line.extra[name] = value
            if task == "streaming":
                line.extra["memory"] = m[0].get("memory", [])
                line.extra["tokens"] = m[0].get("tokens")
                line.extra["beyond_trained"] = m[0].get("beyond_trained")
        lines.append(line)
    return lines


def context_tokens(row: dict) -> int:
    """The context length of a row's case, from its id: needle/1024/..., fidelity/2048+128/..., streaming/24576/..."""
    return int(row["case_id"].split("/")[1].split("+")[0])


def needle_by_length(rows: list[dict]) -> dict[tuple[str, float], dict[int, tuple[int, int]]]:
    """(method, budget) -> {context tokens: (hits, cases)} for the needle grid."""
    out: dict[tuple[str, float], dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for row in rows:
        if row["task"] != "needle" or row["status"] != "ok":
            continue
        tokens = context_tokens(row)
        cell = out[(row["method"], row["budget"])][tokens]
        cell[0] += int(row["quality"] or 0)
        cell[1] += 1
    return {k: {t: (h, n) for t, (h, n) in v.items()} for k, v in out.items()}
