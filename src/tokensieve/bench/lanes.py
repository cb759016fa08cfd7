"""`--lanes N`: one sweep as N local processes side by side, on one machine and one SQLite file.

Decoding a small model is latency-bound: on 2 cores a one-thread lane decodes SmolLM2 about as fast as one
two-thread process, so two lanes run the quick suite in 7 min 47 s instead of 11 min 49 s (docs/EVALUATION.md).
Each lane runs every N-th (model, case) pair with all of that pair's cells, so the dense prefill a case's methods branch
from is still computed once. Lanes write their rows to the same store (WAL, as two sweeps sharing a --db do);
this process only watches the store, and reports once every lane has exited.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from tokensieve.bench import runner
from tokensieve.bench.store import Store
from tokensieve.errors import TokensieveError


def threads_per_lane(lanes: int) -> int:
    return max(1, (os.cpu_count() or 1) // lanes)


def shard_cells(cells: list[runner.Cell], index: int, count: int) -> list[runner.Cell]:
    """The cells of every count-th (model, case) pair from the index-th on, in the grid's order. A case's
    methods stay together, so its one dense prefill is still shared by the methods that branch from it."""
    pairs = list(dict.fromkeys((c.model, c.case) for c in cells))
    mine = set(pairs[index - 1::count])
    return [c for c in cells if (c.model, c.case) in mine]


def split(cells: list[runner.Cell], lanes: int) -> list[list[runner.Cell]]:
    """The cells in `lanes` shares by (model, case) pair, in the grid's order; empty shares dropped."""
    shares = [shard_cells(cells, k, lanes) for k in range(1, lanes + 1)]
    return [s for s in shares if s]


def start_lane(cells_file: Path, db: Path, log: Path, threads: int, retry_failed: bool) -> subprocess.Popen:
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    args = [sys.executable, "-m", "tokensieve.bench.lanes", str(cells_file), str(db)]
    with open(log, "w") as out:
        return subprocess.Popen(args + (["--retry-failed"] if retry_failed else []), stdout=out,
                                stderr=subprocess.STDOUT, env=env)


def wait_lanes(procs: list[subprocess.Popen], logs: list[Path], tick: Callable[[], None] | None = None,
               every: float = 1.0) -> None:
    """Wait for every lane; the first that fails stops the others and is one error naming its last log line."""
    def check() -> bool:
        """True while a lane runs; raises for the first that failed."""
        for k, p in enumerate(procs):
            if p.poll():
                raise TokensieveError(f"lane {k + 1} of {len(procs)} stopped (exit {p.returncode}): "
                                      f"{_last_line(logs[k])} (log: {logs[k]})")
        return any(p.returncode is None for p in procs)

    try:
        while check():
            if tick:
                tick()
            time.sleep(every)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait()
    if tick:
        tick()


@contextmanager
def _terminate_as_exit():
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _last_line(log: Path) -> str:
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()] if log.exists() else []
    return lines[-1].strip() if lines else "no output"


def sweep_in_lanes(cells: list[runner.Cell], db: Path, lanes: int, retry_failed: bool = False,
                   progress: Callable[[int, int], None] | None = None) -> int:
    """Run the pending cells in `lanes` processes; returns how many ran. The lane logs are kept (and named)
    only when a lane fails."""
    store = Store(db)
    try:
        todo = runner.pending(cells, store, retry_failed)
        keys = {c.key() for c in cells}
        shares = split(todo, lanes)
        work = Path(tempfile.mkdtemp(prefix="tokensieve-lanes-"))
        logs = [work / f"lane{k + 1}.log" for k in range(len(shares))]
        procs = []
        for k, share in enumerate(shares):
            cells_file = work / f"lane{k + 1}.json"
            cells_file.write_text(json.dumps([c.inputs() for c in share]))
            procs.append(start_lane(cells_file, db, logs[k], threads_per_lane(len(shares)), retry_failed))

        def tick() -> None:
            if progress:
                progress(len(keys & store.done(include_failed=not retry_failed)), len(cells))

        with _terminate_as_exit():  # so that `kill` of this process stops its lanes too (wait_lanes' finally)
            wait_lanes(procs, logs, tick)
        shutil.rmtree(work, ignore_errors=True)
        return len(todo)
    finally:
        store.close()


def _frozen(value):
    """JSON gives lists where a case held tuples: back to tuples, so the cell stays hashable."""
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


def main(argv: list[str]) -> None:
    """One lane: `python -m tokensieve.bench.lanes CELLS.json DB [--retry-failed]`."""
    cells_file, db = Path(argv[0]), Path(argv[1])
    cells = [runner.Cell(c["model"], tuple(sorted((k, _frozen(v)) for k, v in c["case"].items())), c["method"],
                         c["budget"], c["repeats"]) for c in json.loads(cells_file.read_text())]
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # the sweep closes its peers
    store = Store(db)
    try:
        ran = runner.sweep(cells, store, retry_failed="--retry-failed" in argv[2:])
    finally:
        store.close()
    print(f"lane done: {ran} cells run")


if __name__ == "__main__":
    main(sys.argv[1:])
