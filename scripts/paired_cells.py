"""Two methods' stored cells paired case by case, by the harness's test (`bench.stats.compare`: McNemar on 0/1
scores, else the paired bootstrap): B's mean minus A's, in points, with its 95 % interval. docs/KV-STORE.md's
comparison with transformers' QuantizedCache at equal bytes comes from:

    .venv/bin/python scripts/paired_cells.py runs/kv-store.sqlite smollm2-135m hf:quantized@int4-g32 full@int4
"""

from __future__ import annotations

import sqlite3
import sys

from tokensieve.bench.cell import code_version
from tokensieve.bench.stats import compare, verdict


def scores(db: sqlite3.Connection, model: str, method: str) -> dict[str, float]:
    """The method's cells of this code version (a store keeps older versions' cells beside them)."""
    rows = db.execute("select case_id, quality from cells where model = ? and method = ? and status = 'ok' and "
                      "version = ?", (model, method, code_version(method))).fetchall()
    return dict(rows)


def main(store: str, model: str, a: str, b: str) -> None:
    with sqlite3.connect(store) as db:
        first, second = scores(db, model, a), scores(db, model, b)
    cases = sorted(set(first) & set(second))
    if not cases:
        raise SystemExit(f"no case has cells of both {a} and {b} for {model} in {store}")
    paired = compare([first[c] for c in cases], [second[c] for c in cases])
    print(f"{model}, {len(cases)} cases: {a} {100 * sum(first[c] for c in cases) / len(cases):.1f} %, {b} "
          f"{100 * sum(second[c] for c in cases) / len(cases):.1f} %; {b} − {a}: {100 * paired.diff:+.1f} points "
          f"[{100 * paired.low:+.1f}, {100 * paired.high:+.1f}], p = {paired.p:.3g}, {verdict(paired)}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
