"""Carry a suite's stored cells across a code change that could not alter them: each cell the suite would run
again takes over, under its current key and version, its row from the version its method had at an older commit,
unless its task's subtask is one the change did alter. The rows move in one transaction, with a note in the
store's meta; no other row is touched.

    .venv/bin/python scripts/carry_cells.py SUITE STORE OLD_COMMIT [SUBTASK ...]   # prints what it would carry
    .venv/bin/python scripts/carry_cells.py SUITE STORE OLD_COMMIT [SUBTASK ...] --write

The standard suite's one use: 8eddf8e gave niah_single_uuid 48 new tokens instead of 16 (bench/prompts.py, which
every decoder cell's version hashes), so every cell of the suite was keyed anew, and only the UUID cells ran again.
The other subtasks' cells carry over from 79e6284, the commit before it:

    .venv/bin/python scripts/carry_cells.py standard runs/standard.sqlite 79e6284 niah_single_uuid --write
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from tokensieve.bench import command, runner
from tokensieve.bench.cell import code_version
from tokensieve.bench.store import Store

VERSIONS_AT = "import json, sys; from tokensieve.bench.cell import code_version; " \
              "print(json.dumps({m: code_version(m) for m in sys.argv[1:]}))"


def versions_at(commit: str, methods: list[str]) -> dict[str, str]:
    """Each method's code version in the sources of `commit` (a temporary git worktree)."""
    with tempfile.TemporaryDirectory() as folder:
        tree = Path(folder) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), commit], check=True, capture_output=True)
        try:
            out = subprocess.run([sys.executable, "-c", VERSIONS_AT, *methods], check=True, capture_output=True,
                                 text=True, env={"PYTHONPATH": str(tree / "src"), "PATH": "/usr/bin:/bin"}).stdout
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], check=True)
    return json.loads(out.strip().splitlines()[-1])


def main(suite: str, db: str, commit: str, altered: list[str], write: bool) -> None:
    cells = command.plan(suite, None, None, None, None, None, None, None, None, echo=lambda *a: None)
    store = Store(db)
    todo = runner.pending(cells, store)
    old = versions_at(commit, sorted({c.method for c in todo}))
    stored = store.done()
    moves, left = [], Counter()
    for cell in todo:
        key = cell.key(old[cell.method])
        if key not in stored or cell.case_dict.get("subtask") in altered:
            left[cell.method] += 1
            continue
        moves.append((key, cell.key(), code_version(cell.method)))
    if write and moves:
        store.rekey(moves, (f"carried from {commit}", f"{len(moves)} cells, all but {' '.join(altered) or '-'}"))
    store.close()
    print(f"{suite}: {len(todo)} of {len(cells)} cells pending; {'carried' if write else 'would carry'} "
          f"{len(moves)} from {commit}, {sum(left.values())} left to run {dict(sorted(left.items()))}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--write"]
    if len(args) < 3:
        raise SystemExit("usage: carry_cells.py SUITE STORE OLD_COMMIT [SUBTASK ...] [--write]")
    main(args[0], args[1], args[2], args[3:], "--write" in sys.argv)
