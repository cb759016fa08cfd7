"""Prompt compression: compress · compress-bench."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from tokensieve.commands.common import Device, Model, err, guarded, out, read_text
from tokensieve.errors import TokensieveError


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

    from tokensieve.bench import prompt_bench as bench
    from tokensieve.bench.peers import llmlingua

    def numbers(text: str, kind, what: str) -> list:
        try:
            return [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise TokensieveError(f"--{what} must be comma-separated numbers, got '{text}'") from None

    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    if bench.PEER in chosen and not llmlingua.available():
        err.print(f"llmlingua venv not found at {llmlingua.venv_dir()}: skipping it "
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


def register(app: typer.Typer) -> None:
    app.command()(compress)
    app.command("compress-bench")(compress_bench)
