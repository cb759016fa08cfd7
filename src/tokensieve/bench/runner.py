"""The grid runner: model x task case x method x budget; every finished cell is one SQLite row.

Rerunning skips the cells whose key (hash of inputs + code version) is already stored, so a sweep killed
at any moment and rerun ends with the same table, without lost or duplicated rows.
"""

from __future__ import annotations

import hashlib
import inspect
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from tokensieve.bench import peers
from tokensieve.bench.store import Store, cell_key
from tokensieve.bench.tasks import case_id
from tokensieve.errors import TokensieveError

ROOT = Path(__file__).resolve().parents[1]
SHARED = ("core", "data", "bench/tasks.py", "bench/cost.py", "bench/metrics.py", "generation.py", "models.py")
PEER_FILES = ("bench/peers.py", "bench/peer_worker.py", "peer_venv.py")


def _method_files(method: str | None) -> list[Path]:
    """The files that define `method`: its class and every tokensieve base class (pyramid -> snapkv), or the
    peer adapter; all method files when `method` is None."""
    if method is None:
        return sorted((ROOT / "kv").rglob("*.py")) + sorted((ROOT / "sparse").rglob("*.py"))
    if peers.is_peer(method):
        return [ROOT / f for f in PEER_FILES]
    from tokensieve.core.policy import REGISTRY

    if method not in REGISTRY:
        return []
    files = {Path(inspect.getsourcefile(c)).resolve() for c in REGISTRY[method].__mro__
             if c.__module__.startswith(("tokensieve.kv", "tokensieve.sparse"))}
    if any("sparse" in f.parts for f in files):
        files.add(ROOT / "sparse" / "base.py")
    return sorted(files)


@cache
def code_version(method: str | None = None) -> str:
    """Hash of the sources that can change a cell's numbers: the shared engine and the method's own files, so
    adding or editing one policy does not invalidate every other method's cells."""
    digest = hashlib.sha256()
    shared = [p for entry in SHARED for p in
              (sorted((ROOT / entry).rglob("*.py")) if (ROOT / entry).is_dir() else [ROOT / entry])]
    for file in shared + _method_files(method):
        digest.update(file.relative_to(ROOT).as_posix().encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class Cell:
    model: str
    case: tuple  # sorted items of the case dict (hashable)
    method: str
    budget: float
    repeats: int = 1

    @property
    def case_dict(self) -> dict:
        return dict(self.case)

    def inputs(self) -> dict:
        return {"model": self.model, "case": self.case_dict, "method": self.method, "budget": self.budget,
                "repeats": self.repeats}

    def key(self, version: str | None = None) -> str:
        return cell_key(self.inputs(), version or code_version(self.method))


def grid(models: list[str], cases: list[dict], methods: list[str], budgets: list[float],
         repeats: int = 1) -> list[Cell]:
    """Every cell once. `full` runs once per case (at 1.0: it keeps everything whatever its budget); peers
    skip the streaming task (kvpress compresses once after prefill)."""
    cells: list[Cell] = []
    for model in models:
        for case in cases:
            frozen = tuple(sorted(case.items()))
            for method in methods:
                if peers.is_peer(method) and case["task"] == "streaming":
                    continue
                for budget in [1.0] if method == "full" else budgets:
                    cells.append(Cell(model, frozen, method, float(budget), repeats))
    return list(dict.fromkeys(cells))


_WARM: set[str] = set()


def _warm_up(model: str) -> None:
    """One short untimed generation per process and model, so no cell pays first-call costs."""
    if model in _WARM:
        return
    from tokensieve.data.corpus import haystack
    from tokensieve.generation import cached_load, generate

    _, tok = cached_load(model)
    generate(model, haystack(tok, 128), "What is this about?", "snapkv", 0.5, max_new_tokens=4)
    _WARM.add(model)


def run_cell(cell: Cell, version: str | None = None) -> dict:
    """Run one cell and return its row; any failure of the method is a failed row, not an exception."""
    from tokensieve.bench.tasks import run_local

    version = version or code_version(cell.method)
    case = cell.case_dict
    start = time.perf_counter()
    status, quality, metrics = "ok", None, {}
    try:
        _warm_up(cell.model)
        if peers.is_peer(cell.method):
            quality, metrics = peers.run_peer(cell.model, case, cell.method, cell.budget, cell.repeats)
        else:
            quality, metrics = run_local(cell.model, case, cell.method, cell.budget, cell.repeats)
    except peers.PeerFailed as err:
        status, metrics = "failed", {"error": str(err)}
    except Exception as err:  # a method that breaks on a case is a result worth a row
        status, metrics = "failed", {"error": f"{type(err).__name__}: {err}", "trace": traceback.format_exc()[-1500:]}
    metrics["cell_s"] = round(time.perf_counter() - start, 3)
    return {"key": cell.key(version), "version": version, "model": cell.model, "task": case["task"],
            "case_id": case_id(case), "method": cell.method, "budget": cell.budget, "status": status,
            "quality": quality, "metrics": metrics}


def pending(cells: list[Cell], store: Store) -> list[Cell]:
    done = store.done()
    return [c for c in cells if c.key() not in done]


def sweep(cells: list[Cell], store: Store, executor: str = "local", address: str | None = None,
          progress: Callable[[int, int], None] | None = None, on_row: Callable[[dict], None] | None = None,
          num_cpus: int | None = None) -> int:
    """Run the cells not yet stored; returns how many ran. `progress(done, total)` after each row."""
    todo = pending(cells, store)
    total, done = len(cells), len(cells) - len(todo)
    if progress:
        progress(done, total)

    def record(row: dict) -> None:
        nonlocal done
        store.put(row)
        done += 1
        if on_row:
            on_row(row)
        if progress:
            progress(done, total)

    if executor == "local":
        try:
            for cell in todo:
                record(run_cell(cell))
        finally:
            peers.close_all()
    elif executor == "ray":
        from tokensieve.bench.ray_executor import run_ray

        run_ray(todo, record, address, num_cpus)
    else:
        raise TokensieveError(f"unknown executor '{executor}': choose local or ray")
    return len(todo)


def describe(cell: Cell) -> str:
    return f"{case_id(cell.case_dict)} · {cell.method} @ {cell.budget:g}"


__all__ = ["Cell", "asdict", "code_version", "grid", "run_cell", "sweep"]
