"""The grid runner: model x task case x method x budget; every finished cell is one SQLite row.

Rerunning skips the cells whose key (hash of inputs + code version) is already stored, so a sweep killed
at any moment and rerun ends with the same table, without lost or duplicated rows. A method that fails on a
cell leaves a failed row (skipped on rerun unless `retry_failed`); a bug in tokensieve stops the sweep.
"""

from __future__ import annotations

from collections.abc import Callable

from tokensieve.bench.cell import Cell, any_case_id, code_version, run_cell
from tokensieve.bench.peers import kvpress
from tokensieve.bench.store import Store
from tokensieve.errors import TokensieveError

# the unmodified decoder cache, the plain encoder, plain greedy decoding: one cell at 1.0 per case
REFERENCES = ("full", "none", "greedy")


def grid(models: list[str], cases: list[dict], methods: list[str], budgets: list[float],
         repeats: int = 1) -> list[Cell]:
    """Every cell once. `full` / `none` run once per case (at 1.0: they keep everything whatever the budget); peers
    skip the streaming task (kvpress compresses once after prefill)."""
    cells: list[Cell] = []
    for model in models:
        for case in cases:
            frozen = tuple(sorted(case.items()))
            for method in methods:
                if kvpress.is_peer(method) and case["task"] == "streaming":
                    continue
                plain = method in REFERENCES or (case["task"] == "decode" and "+" not in method)
                for budget in [1.0] if plain else budgets:
                    cells.append(Cell(model, frozen, method, float(budget), repeats))
    return list(dict.fromkeys(cells))


def pending(cells: list[Cell], store: Store, retry_failed: bool = False) -> list[Cell]:
    """The cells without a stored row (with `retry_failed`, also those whose stored row failed)."""
    done = store.done(include_failed=not retry_failed)
    return [c for c in cells if c.key() not in done]


def sweep(cells: list[Cell], store: Store, executor: str = "local", address: str | None = None,
          progress: Callable[[int, int], None] | None = None, on_row: Callable[[dict], None] | None = None,
          num_cpus: int | None = None, retry_failed: bool = False) -> int:
    """Run the cells not yet stored (and, with `retry_failed`, those stored as failed: their new row replaces
    the failed one); returns how many ran. `progress(done, total)` after each row."""
    todo = pending(cells, store, retry_failed)
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
            kvpress.close_all()
    elif executor == "ray":
        from tokensieve.bench.ray_executor import run_ray

        run_ray(todo, record, address, num_cpus)
    else:
        raise TokensieveError(f"unknown executor '{executor}': choose local or ray")
    return len(todo)


def describe(cell: Cell) -> str:
    return f"{any_case_id(cell.case_dict)} · {cell.method} @ {cell.budget:g}"


__all__ = ["Cell", "code_version", "grid", "pending", "run_cell", "sweep"]
