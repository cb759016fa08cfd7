"""The `tokensieve` command line: generate · demo · models. Bad input -> one line on stderr, exit 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tokensieve.errors import TokensieveError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Training-free token reduction for transformer inference, measured on real models.")
models_app = typer.Typer(no_args_is_help=True, help="The offline model zoo.")
app.add_typer(models_app, name="models")
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)


def fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def guarded(fn):
    """Turn every TokensieveError (and a missing file) into one clear line and exit code 2."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TokensieveError as e:
            fail(str(e))
        except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError) as e:
            fail(f"cannot read input: {e}")

    return wrapper


def read_text(path: Path | None, what: str) -> str:
    data = sys.stdin.buffer.read() if path is None or str(path) == "-" else Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise TokensieveError(f"{what} is not valid UTF-8 text") from None


Model = Annotated[str, typer.Option("--model", "-m", help="Zoo name (see `models list`) or a local HF directory.")]
Device = Annotated[str, typer.Option(help="torch device: cpu, cuda, cuda:1, mps …")]


@app.command()
@guarded
def generate(
    question: Annotated[str, typer.Option("--question", "-q", help="The question asked about the context.")],
    context_file: Annotated[Path, typer.Option("--context-file", "-c", help="UTF-8 text file ('-' = stdin).")],
    model: Model = "smollm2-135m",
    policy: Annotated[str, typer.Option("--policy", "-p", help="KV policy (see `tokensieve policies`).")] = "snapkv",
    budget: Annotated[str, typer.Option(help="Ratio in (0, 1] of the prompt, or a token count per layer.")] = "0.25",
    chunk: Annotated[int | None, typer.Option(help="Prefill in chunks of N tokens, evicting after each.")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens to generate at most.")] = 32,
    answer_prefix: Annotated[str, typer.Option(help="Text the answer starts with (completion style).")] = "",
    query_agnostic: Annotated[bool, typer.Option(help="Compress the context before the question is seen.")] = False,
    sinks: Annotated[int, typer.Option(help="Leading tokens always kept (attention sinks).")] = 4,
    window: Annotated[int, typer.Option(help="Most recent tokens always kept.")] = 32,
    device: Device = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object: answer and stats.")] = False,
) -> None:
    """Answer a question about a long document with a KV policy, and report what it cost."""
    from tokensieve.generation import generate as run
    from tokensieve.kv import full  # noqa: F401

    context = read_text(context_file, "the context file")
    result = run(model, context, question, policy, budget, chunk=chunk, max_new_tokens=max_new_tokens,
                 query_aware=not query_agnostic, answer_prefix=answer_prefix, sinks=sinks, window=window,
                 device=device)
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    out.print(f"[bold]answer:[/] {result.answer}")
    out.print(cost_table([result]))


def cost_table(results) -> Table:
    table = Table(title="cost (measured)")
    for col in ("policy", "budget", "answer", "prompt tok", "kept tok/layer", "KV MB", "prefill s",
                "decode tok/s", "peak RSS MB"):
        table.add_column(col, overflow="fold")
    for r in results:
        s = r.stats
        kept = sum(s.kept_tokens) / max(len(s.kept_tokens), 1)
        table.add_row(s.policy, f"{s.budget:g}", r.answer[:40], str(s.prompt_tokens), f"{kept:.0f}",
                      f"{s.kv_bytes_kept / 2**20:.1f} / {s.kv_bytes_full / 2**20:.1f}", f"{s.prefill_s:.2f}",
                      f"{s.decode_tok_s:.1f}", f"{s.peak_rss_mb:.0f}")
    return table


@app.command()
@guarded
def demo(
    model: Model = "smollm2-135m",
    policy: Annotated[str, typer.Option("--policy", "-p")] = "snapkv",
    budget: str = "0.25",
    tokens: Annotated[int, typer.Option(help="Length of the essay haystack.")] = 2000,
    depth: Annotated[float, typer.Option(help="Where the fact is planted, 0..1.")] = 0.5,
    chunk: int | None = 512,
    device: Device = "cpu",
) -> None:
    """The main job: a planted fact in Paul Graham essays, full cache vs one policy, answers and cost."""
    from tokensieve.data.needle import needle_case
    from tokensieve.generation import cached_load
    from tokensieve.generation import generate as run

    if not 0 <= depth <= 1:
        raise TokensieveError(f"depth {depth} is outside [0, 1]")
    _, tokenizer = cached_load(model, device)
    case = needle_case(tokenizer, tokens, depth)
    out.print(f"[bold]{tokens}-token haystack[/] of Paul Graham essays, fact planted at {depth:.0%}: "
              f"[italic]{case.question}[/] (expected: {case.expected})")
    results = [
        run(model, case.context, case.question, name, b, chunk=chunk, answer_prefix=case.answer_prefix,
            max_new_tokens=12, device=device, stop_at_newline=True)
        for name, b in (("full", "1.0"), (policy, budget))
    ]
    out.print(cost_table(results))
    for r in results:
        hit = case.expected in r.answer
        out.print(f"{r.stats.policy:>14} @ {r.stats.budget:g}: {'found' if hit else 'MISSED'} the fact")


@app.command()
@guarded
def haystack(
    tokens: Annotated[int, typer.Option(help="Approximate length in the model's tokens.")] = 8000,
    depth: Annotated[float, typer.Option(help="Where the fact is planted, 0..1 (negative: no fact).")] = 0.5,
    needle: Annotated[int, typer.Option(help="Which built-in fact to plant.")] = 0,
    model: Model = "smollm2-135m",
) -> None:
    """Print a long document of Paul Graham essays with a planted fact (and its question on stderr)."""
    from tokensieve.data.corpus import haystack as essays
    from tokensieve.data.needle import needle_case
    from tokensieve.models import resolve

    if tokens < 1:
        raise TokensieveError("tokens must be positive")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve(model))
    if depth < 0:
        print(essays(tokenizer, tokens))
        return
    if depth > 1:
        raise TokensieveError(f"depth {depth} is outside [0, 1]")
    case = needle_case(tokenizer, tokens, depth, needle)
    print(case.context)
    err.print(f"question: {case.question}\nanswer prefix: {case.answer_prefix}\nexpected: {case.expected}")


@app.command()
@guarded
def bench(
    suite: Annotated[str, typer.Option(help="quick (< 10 min on 2 cores) or standard (the published one).")] = "quick",
    model: Annotated[str, typer.Option("--model", "-m", help="Zoo name(s) or local HF dir(s), comma-separated.")]
    = "smollm2-135m",
    methods: Annotated[str | None, typer.Option(help="Comma-separated: policies and kvpress:<press> peers "
                                                     "(default: the suite's, peers if their venv exists).")] = None,
    budgets: Annotated[str | None, typer.Option(help="Comma-separated ratios in (0, 1].")] = None,
    tasks: Annotated[str | None, typer.Option(help="Only these tasks: needle, fidelity, streaming.")] = None,
    lengths: Annotated[str | None, typer.Option(help="Needle context lengths in tokens, comma-separated.")] = None,
    depths: Annotated[str | None, typer.Option(help="Needle depths in [0, 1], comma-separated.")] = None,
    needles: Annotated[str | None, typer.Option(help="Needle indices, comma-separated.")] = None,
    repeats: Annotated[int | None, typer.Option(help="Timed repetitions per cell (median).")] = None,
    executor: Annotated[str, typer.Option(help="local, or ray (a local Ray cluster unless --ray-address).")] = "local",
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster address: host:port or ray://host:port.")]
    = None,
    db: Annotated[Path, typer.Option(help="SQLite results; finished cells are skipped on rerun.")]
    = Path("runs/bench.sqlite"),
    out_dir: Annotated[Path | None, typer.Option("--out", help="Where the report goes (default: next to --db).")]
    = None,
) -> None:
    """Sweep model x task case x method x budget (resumable), print the table, write the report."""
    from tokensieve.bench import command

    cells = command.plan(suite, model, methods, budgets, tasks, lengths, depths, needles, repeats,
                         echo=lambda m: err.print(m, highlight=False))
    command.run(cells, db, out_dir or db.parent, executor, ray_address, out, err)


@app.command()
@guarded
def report(
    db: Annotated[Path, typer.Option(help="SQLite results written by `tokensieve bench`.")] = Path("runs/bench.sqlite"),
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for RESULTS.md, pareto.png, results.html.")]
    = Path("docs"),
) -> None:
    """Markdown table, Pareto PNG and a self-contained interactive HTML page from a bench database."""
    from tokensieve.bench import report as rep

    if not db.is_file():
        raise TokensieveError(f"no bench database at {db}: run `tokensieve bench --db {db}` first")
    paths = rep.write(db, out_dir, command=f"tokensieve report --db {db} --out {out_dir}")
    err.print("wrote " + ", ".join(str(p) for p in paths.values()))


peers_app = typer.Typer(no_args_is_help=True, help="Peer methods (kvpress) in their own venv.")
app.add_typer(peers_app, name="peers")


@peers_app.command("setup")
@guarded
def peers_setup() -> None:
    """Create the kvpress venv (CPU torch first, then kvpress) used by kvpress:* methods."""
    from tokensieve.bench import peers

    seconds = peers.setup(echo=lambda m: err.print(m, highlight=False))
    err.print(f"kvpress venv ready at {peers.venv_dir()} in {seconds:.0f} s")


@app.command()
def policies() -> None:
    """List the registered policies with the paper each implements."""
    from tokensieve.core.policy import REGISTRY
    from tokensieve.kv import full  # noqa: F401

    table = Table(title="policies")
    table.add_column("name")
    table.add_column("stage")
    table.add_column("method")
    for name, cls in sorted(REGISTRY.items()):
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        table.add_row(name, cls.__module__.split(".")[1], doc)
    out.print(table)


@models_app.command("list")
def models_list() -> None:
    """Packaged models, whether installed, and whether the fast safetensors copy exists."""
    from tokensieve import models

    table = Table(title=f"model zoo (cache: {models.cache_root()})")
    for col in ("name", "package", "installed", "converted", "description"):
        table.add_column(col)
    for name, spec in models.ZOO.items():
        table.add_row(name, spec.package, "yes" if models.installed(name) else "no",
                      "yes" if (models.converted_dir(name) / "config.json").exists() else "no", spec.description)
    out.print(table)


def main() -> None:
    app()
if __name__ == "__main__":
    main()
