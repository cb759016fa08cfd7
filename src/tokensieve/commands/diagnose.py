"""Looking inside a model: inspect · inspect-bench."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tokensieve.commands.common import Device, Model, err, guarded, out, read_text
from tokensieve.errors import TokensieveError


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
    from tokensieve.models import cached_load

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
    from tokensieve.kv.auto import load_report

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


def register(app: typer.Typer) -> None:
    app.command()(inspect)
    app.command("inspect-bench")(inspect_bench)
