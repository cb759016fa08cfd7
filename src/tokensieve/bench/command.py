"""What `tokensieve bench` and `tokensieve report` do, kept out of cli.py."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from tokensieve.bench import report, runner, suites
from tokensieve.bench.lanes import shard_cells, sweep_in_lanes
from tokensieve.bench.peers import kvpress
from tokensieve.bench.report.formatting import show
from tokensieve.bench.store import Store
from tokensieve.bench.summary import latest_version, summarise
from tokensieve.errors import TokensieveError


def _split(text: str | None) -> list[str] | None:
    return [p.strip() for p in text.split(",") if p.strip()] if text else None


def _numbers(text: str | None, kind, what: str) -> list | None:
    if not text:
        return None
    try:
        return [kind(p) for p in _split(text)]
    except ValueError:
        raise TokensieveError(f"--{what} takes comma-separated numbers, got '{text}'") from None


def plan(suite: str, models: str, methods: str | None, budgets: str | None, tasks: str | None,
         lengths: str | None, depths: str | None, needles: str | None, repeats: int | None,
         echo=print, only: str | None = None, parts: str | None = None,
         shard: str | None = None, subtasks: str | None = None) -> list[runner.Cell]:
    """Validate every choice (one clear error each) and expand the suite's grids, before any model is loaded.
    Each option replaces that dimension in every part of the suite; `only` instead keeps the suite's cells of
    those methods (e.g. to re-run one method after changing it); `parts` keeps the suite's parts of those numbers
    (1-based), so a long suite can run part by part; `shard` "K/N" keeps the K-th of N interleaved slices of the
    (model, case) pairs, so that N processes can share one part without running a cell twice; `subtasks` keeps
    the RULER cases of those subtasks (e.g. to re-run one subtask after fixing it) and drops every other case."""
    from tokensieve import models as zoo

    chosen = suites.suite(suite)
    method_list = suites.check_methods(_split(methods)) if methods else None
    budget_list = suites.parse_budgets(budgets) if budgets else None
    wanted = suites.check_tasks(_split(tasks)) if tasks else None
    wanted_subtasks = check_subtasks(subtasks) if subtasks else None
    numbers = (_numbers(lengths, int, "lengths"), _numbers(depths, float, "depths"), _numbers(needles, int, "needles"))
    for d in numbers[1] or []:
        if not 0 <= d <= 1:
            raise TokensieveError(f"depth {d} is outside [0, 1]")
    for n in numbers[0] or []:
        if n < 64:
            raise TokensieveError(f"needle length {n} is too short: use at least 64 tokens")
    model_list = _split(models) or []
    from tokensieve.encoder import zoo as encoders

    for m in model_list + [m for part in chosen.parts for m in part.models if not model_list]:
        encoders.resolve(m) if m in encoders.ENCODERS else zoo.resolve(m)
    if repeats is not None and repeats < 1:
        raise TokensieveError("--repeats must be at least 1")
    slice_of = parse_shard(shard) if shard else None
    chosen_parts = list(enumerate(chosen.parts, 1))
    if parts:
        wanted_parts = set(_numbers(parts, int, "parts"))
        unknown = wanted_parts - {i for i, _ in chosen_parts}
        if unknown:
            raise TokensieveError(f"suite '{suite}' has parts 1..{len(chosen_parts)}, not {sorted(unknown)}")
        chosen_parts = [(i, p) for i, p in chosen_parts if i in wanted_parts]
    cells: list[runner.Cell] = []
    peer_cells: list[runner.Cell] = []  # kept apart: the venv is looked at only once every choice is valid
    for _, part in chosen_parts:
        cases = _override_needles(part.cases, *numbers)
        if numbers[0]:  # RULER and code cases: keep those of the given lengths
            cases = [c for c in cases if c["task"] not in ("ruler", "code")
                     or c.get("tokens", c.get("context")) in numbers[0]]
        if wanted:
            cases = [c for c in cases if c["task"] in wanted]
        if wanted_subtasks:
            cases = [c for c in cases if c["task"] == "ruler" and c["subtask"] in wanted_subtasks]
        part_models = model_list or part.models or [zoo.DEFAULT_MODEL]
        part_methods = method_list or list(part.methods)
        cells += runner.grid(part_models, cases, part_methods, budget_list or part.budgets, repeats or part.repeats)
        if not methods and part.peers:
            peer_cells += runner.grid(part_models, cases, list(part.peers),
                                      budget_list or part.peer_budgets or part.budgets, repeats or part.repeats)
    if only:
        keep = set(suites.check_methods(_split(only)))
        cells, peer_cells = ([c for c in group if c.method in keep] for group in (cells, peer_cells))
        if not cells and not peer_cells:
            raise TokensieveError(f"--only {only}: the suite has no cells of these methods")
    if wanted_subtasks and not cells:
        raise TokensieveError(f"--subtasks {subtasks}: the suite has no RULER cases of these subtasks")
    check_fits(cells + peer_cells)
    if peer_cells and not kvpress.available():
        where = f"no venv at {kvpress.venv_dir()} (run `tokensieve peers setup`)"
        if not cells:
            raise TokensieveError(f"--only {only}: kvpress cells only, and {where}")
        echo(f"kvpress peers skipped: {where}")
        peer_cells = []
    cells = list(dict.fromkeys(cells + peer_cells))
    return shard_cells(cells, *slice_of) if slice_of else cells


ANSWER_ROOM = 64  # the longest RULER answer (56 new tokens) and the prompt's framing; checked before any prefill


def check_fits(cells: list[runner.Cell]) -> None:
    """One clear error, before any model runs, for a RULER or needle case whose prompt and answer exceed its
    model's context (otherwise found only after a prefill that can take half an hour)."""
    limits: dict[str, int | None] = {}
    for cell in cells:
        case = cell.case_dict
        if case["task"] not in ("ruler", "needle"):
            continue
        if cell.model not in limits:
            limits[cell.model] = context_limit(cell.model)
        limit = limits[cell.model]
        if limit and case["tokens"] + ANSWER_ROOM > limit:
            raise TokensieveError(f"{case['task']} cases of {case['tokens']} tokens leave no room for the answer in "
                                  f"{cell.model}'s {limit}-token context: use at most {limit - ANSWER_ROOM}")


def context_limit(model: str) -> int | None:
    """A decoder's `max_position_embeddings` from its config.json (None for an encoder or a config without it)."""
    import json

    from tokensieve import models as zoo
    from tokensieve.encoder import zoo as encoders

    if model in encoders.ENCODERS:
        return None
    config = json.loads((zoo.resolve(model) / "config.json").read_text())
    return config.get("max_position_embeddings") or config.get("text_config", {}).get("max_position_embeddings")


def lanes_for(suite: str, lanes: int | None, executor: str) -> int:
    """--lanes as given, else the suite's own (local executor only), never more than the CPU count."""
    if lanes is not None:
        return lanes
    return min(suites.suite(suite).lanes, os.cpu_count() or 1) if executor == "local" else 1


def check_subtasks(text: str) -> set[str]:
    """Comma-separated RULER subtask names, each one of data.ruler.TASKS."""
    from tokensieve.data.ruler import TASKS

    names = set(_split(text))
    if not names or names - set(TASKS):
        raise TokensieveError(f"--subtasks takes RULER subtasks ({', '.join(TASKS)}), got '{text}'")
    return names


def parse_shard(text: str) -> tuple[int, int]:
    """"K/N" -> (K, N) with 1 <= K <= N."""
    k, sep, n = text.partition("/")
    try:
        index, count = int(k), int(n)
    except ValueError:
        index = count = 0
    if not sep or not 1 <= index <= count:
        raise TokensieveError(f"--shard takes K/N with 1 <= K <= N (e.g. 1/2), got '{text}'")
    return index, count


def _override_needles(cases: list[dict], lengths, depths, needles) -> list[dict]:
    """Replace a part's needle cases by the product of the given lengths, depths and needles (each defaulting
    to the values the part had)."""
    from tokensieve.bench.tasks import needle_cases

    base = [c for c in cases if c["task"] == "needle"]
    if not base or not (lengths or depths or needles):
        return cases
    return [c for c in cases if c["task"] != "needle"] + needle_cases(
        lengths or sorted({c["tokens"] for c in base}), depths or sorted({c["depth"] for c in base}),
        needles or sorted({c["needle"] for c in base}))


def run(cells: list[runner.Cell], db: Path, out: Path, executor: str, address: str | None, console: Console,
        err: Console, retry_failed: bool = False, lanes: int = 1) -> dict[str, Path]:
    """Sweep the cells (resumable), print the summary table, write the report. `lanes` > 1 runs the local sweep
    as that many processes side by side (`bench.lanes`)."""
    if executor not in ("local", "ray"):
        raise TokensieveError(f"unknown executor '{executor}': choose local or ray")
    if address and executor != "ray":
        raise TokensieveError("--ray-address needs --executor ray")
    if lanes < 1:
        raise TokensieveError(f"--lanes must be at least 1, got {lanes}")
    if lanes > 1 and executor != "local":
        raise TokensieveError("--lanes applies to the local executor (Ray schedules its own workers)")
    if executor == "ray" and address:
        from tokensieve.bench.ray_executor import check_reachable

        check_reachable(address)
    store = Store(db)
    keys = [c.key() for c in cells]
    columns = (TextColumn("[bold]bench"), BarColumn(), MofNCompleteColumn(), TextColumn("cells"),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("", total=len(cells))

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        def on_row(row: dict) -> None:
            state = "" if row["status"] == "ok" else " [red]failed[/]"
            bar.update(task, description=f"{row['case_id']} {row['method']}@{row['budget']:g}{state}")

        if lanes > 1:
            bar.update(task, description=f"{lanes} lanes")
            ran = sweep_in_lanes(cells, db, lanes, retry_failed, progress)
        else:
            ran = runner.sweep(cells, store, executor, address, progress, on_row, retry_failed=retry_failed)
    store.add_command(shlex.join(["tokensieve", *sys.argv[1:]]))  # only once its whole grid is done
    rows = latest_version(store.rows(keys))
    store.close()
    err.print(f"{ran} cells run, {len(cells) - ran} already in {db}")
    decoder_rows = [r for r in rows if r["task"] not in ("encoder", "decode")]
    if decoder_rows:
        console.print(summary_table(decoder_rows))
    paths = report.write(db, out, keys, command=f"tokensieve report --db {db} --out {out}")
    err.print("wrote " + ", ".join(str(p) for p in paths.values()))
    return paths


def summary_table(rows: list[dict]) -> Table:
    """The terminal table after a sweep: one line per (model, task, length, method, budget), quality with its 95 %
    interval (perplexity for the stream)."""
    table = Table(title="quality kept vs cost (measured; quality as mean [95 % CI])")
    for col in ("model", "task", "tokens", "method", "budget", "cases", "quality", "kept KV", "prefill s",
                "decode tok/s", "peak RSS MB", "failed"):
        table.add_column(col)
    for ln in sorted(summarise(rows), key=lambda ln: (ln.model, ln.task, ln.tokens, ln.method, ln.budget)):
        ppl = ln.extra.get("ppl")
        quality = report.quality_text(ln) if ln.quality is not None or ppl is None else f"ppl {ppl:.3g}"
        table.add_row(ln.model, ln.task, str(ln.tokens), ln.method, f"{ln.budget:g}", str(ln.n), quality,
                      show(ln.kv_frac, ".2f"), show(ln.prefill_s, ".2f"),
                      show(ln.decode_tok_s, ".1f"), show(ln.peak_rss_mb, ".0f"), str(ln.failed))
    return table
