"""What prefilling once per case and branching per method saved in a bench database: per (model, length), the
seconds the cells took against what they would have taken had every cell prefilled its own prompt.

    .venv/bin/python scripts/branching_cost.py runs/standard.sqlite
"""

from __future__ import annotations

import sys
from collections import defaultdict

from tokensieve.bench.store import Store
from tokensieve.bench.summary import context_tokens


def main(db: str) -> None:
    store = Store(db)
    rows = [r for r in store.rows() if r["status"] == "ok" and r["task"] == "ruler"]
    store.close()
    spent: dict[tuple, float] = defaultdict(float)
    alone: dict[tuple, float] = defaultdict(float)
    shared_once: dict[tuple, dict[str, float]] = defaultdict(dict)
    cases: dict[tuple, set] = defaultdict(set)
    for r in rows:
        key = (r["model"], context_tokens(r))
        m = r["metrics"]
        spent[key] += m["cell_s"]  # the case's first branched cell paid the shared prefix once
        alone[key] += m["cell_s"] + m.get("shared_prefill_s", 0.0)
        if m.get("shared_prefill_s"):
            shared_once[key][r["case_id"]] = m["shared_prefill_s"]
        cases[key].add(r["case_id"])
    print("| model | tokens | cases | cells | hours spent | hours without branching | saved |")
    print("|---|---|---|---|---|---|---|")
    for key in sorted(spent):
        without = alone[key] - sum(shared_once[key].values())
        cells = sum(1 for r in rows if (r["model"], context_tokens(r)) == key)
        print(f"| {key[0]} | {key[1]} | {len(cases[key])} | {cells} | {spent[key] / 3600:.2f} | {without / 3600:.2f} "
              f"| {without / spent[key]:.1f}× |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/standard.sqlite")
