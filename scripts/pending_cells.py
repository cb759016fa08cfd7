"""How many cells of each suite a run would still compute against the committed stores: the check that a refactor
re-keyed nothing (run it before and after, e.g. with PYTHONPATH pointing at a worktree of the old commit, and
compare). The stores are read from DIR (default runs/), never written.

    .venv/bin/python scripts/pending_cells.py [DIR]
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from tokensieve.bench import command, runner
from tokensieve.bench.store import Store

SUITES = {"standard": "standard.sqlite", "prefill": "prefill.sqlite", "decode": "decode.sqlite",
          "kv-store": "kv-store.sqlite"}


def main(folder: Path) -> None:
    for suite, db in SUITES.items():
        if not (folder / db).exists():
            continue
        cells = command.plan(suite, None, None, None, None, None, None, None, None, echo=lambda *a: None)
        todo = runner.pending(cells, Store(folder / db))
        by_method = dict(sorted(Counter(c.method for c in todo).items()))
        print(f"{suite}: {len(cells)} cells, {len(todo)} pending {by_method}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs"))
