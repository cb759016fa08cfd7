"""Quest variants on the kv-store suite's 50 SmolLM2 4k RULER cases at 12.5 % over int4, paired with the suite's
stored full-cache cells (runs/kv-store.sqlite) by the harness's test (`bench.stats.compare`). The variants are
registered here only, as experiments: not methods of the library. Prints one JSON line per case, then the
paired comparison. docs/KV-STORE.md's numbers come from (about 10 minutes each):

    .venv/bin/python scripts/quest_variants.py smollm2-135m quest-p8@int4 50
    .venv/bin/python scripts/quest_variants.py smollm2-135m quest-dense2@int4 50
    .venv/bin/python scripts/quest_variants.py smollm2-135m quest-rescore2@int4 50
    .venv/bin/python scripts/quest_variants.py smollm2-135m quest-vote2@int4 50

- quest-p8: pages of 8 tokens instead of 16 (tighter bounds, twice the summaries);
- quest-dense2: the first two layers attend densely, as Quest's own evaluation does, and the other layers share
  what is left of the budget, so the mean attended over layers stays 12.5 %.
- quest-rescore2: Quest's bound picks twice the budget's tokens (whole pages), their keys are dequantized and
  scored exactly (q·k, the best over the KV head's query group), and the budget's best of them are attended: the
  same tokens attended, twice the keys read (batch 1, the torch path).
  Ranking four times the budget's candidates by TokenSelect's vote instead became a method of the library,
  `quest_vote` (sparse/quest_vote.py).
- quest-vote2: that method with twice the budget's candidates instead of four (half the keys read and voted).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

from tokensieve.bench.stats import compare, verdict
from tokensieve.bench.suites import ruler_cases
from tokensieve.bench.tasks import case_id, run_local
from tokensieve.methods import REGISTRY
from tokensieve.sparse.base import grouped, sparse_attend
from tokensieve.sparse.quest import Quest
from tokensieve.sparse.quest_vote import QuestVote

STORE = Path(__file__).resolve().parents[1] / "runs" / "kv-store.sqlite"
DENSE_LAYERS = 2


@dataclass
class QuestPage8(Quest):
    name = "quest-p8"
    page: int = 8


@dataclass
class QuestDenseFirst(Quest):
    name = "quest-dense2"
    layers = 0  # the model's layer count, set before a run

    def budgets(self, session, n, batch):
        keeps = super().budgets(session, n, batch)
        spare = DENSE_LAYERS * n
        return [max(40, (self.layers * k - spare) // (self.layers - DENSE_LAYERS)) for k in keeps]

    def attend(self, session, module, query, key, value, attention_mask, **kwargs):
        if module.layer_idx >= DENSE_LAYERS:
            return super().attend(session, module, query, key, value, attention_mask, **kwargs)
        if query.shape[2] == 1:  # a dense decode step, charged as attending every token
            layer = session.layer(module)
            if layer is not None and layer.deferred:
                key, value = layer.rows()
            session.usage.attended(session.real_lengths(key.shape[2], query.shape[0]))
        else:
            session.usage.dense(decode=False)
        return session.dense(module, query, key, value, attention_mask, **kwargs)


@dataclass
class QuestRescore(Quest):
    name = "quest-rescore2"
    factor = 2

    def attend_pages(self, session, module, query, layer, keeps):
        q = grouped(query, layer.keys.shape[1])
        scores = self.page_scores(session, module, q, layer.stored, layer.span_keys)
        wide = self.pick_best(session, scores, [min(self.factor * k, layer.stored) for k in keeps])
        keys, values = layer.gather(wide.indices)
        exact = (q @ keys.transpose(2, 3)).amax(2)  # [b, kv_heads, candidates]
        exact = exact.masked_fill(scores.gather(2, wide.indices).isinf(), float("inf"))  # sinks, window, last page
        best = exact.topk(keeps[0], -1).indices[..., None].expand(-1, -1, -1, keys.shape[-1])
        session.usage.attended(keeps)
        return sparse_attend(query, keys.gather(2, best), values.gather(2, best), module.scaling)

@dataclass
class QuestVoteTwice(QuestVote):
    name = "quest-vote2"
    candidates: int = 2


def main(model: str, method: str, count: int) -> None:
    from tokensieve.models import cached_load

    QuestDenseFirst.layers = cached_load(model)[0].config.num_hidden_layers
    for cls in (QuestPage8, QuestDenseFirst, QuestRescore, QuestVoteTwice):
        REGISTRY[cls.name] = cls
    with sqlite3.connect(STORE) as db:
        full = dict(db.execute("select case_id, quality from cells where method = 'full' and model = ? and "
                               "status = 'ok'", (model,)).fetchall())
    ours, theirs = [], []
    for case in ruler_cases([4096], count):
        quality, metrics = run_local(model, case, method, 0.125)
        cid = case_id(case)
        ours.append(quality)
        theirs.append(full[cid])
        print(json.dumps({"case": cid, "quality": quality, "full": full[cid],
                          "attended": metrics.get("attended_tokens")}), flush=True)
    paired = compare(theirs, ours)
    print(f"{method}: n = {len(ours)}, {100 * sum(ours) / len(ours):.1f} % against full's "
          f"{100 * sum(theirs) / len(theirs):.1f} %: {100 * paired.diff:+.1f} points "
          f"[{100 * paired.low:+.1f}, {100 * paired.high:+.1f}], p = {paired.p:.3g}, {verdict(paired)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
