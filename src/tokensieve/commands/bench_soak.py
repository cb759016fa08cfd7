"""`tokensieve bench soak`: mixed traffic against a real server for a fixed time; memory must stay flat and no
admitted request may be lost."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from tokensieve.commands.common import Model, err, guarded, out
from tokensieve.errors import TokensieveError


@guarded
def bench_soak(
    model: Model = "smollm2-135m",
    minutes: Annotated[float, typer.Option(help="How long the traffic runs.")] = 20.0,
    clients: Annotated[int, typer.Option(help="Concurrent clients.")] = 6,
    pool_mb: Annotated[float, typer.Option(help="The server's KV pool (small enough that some requests wait).")]
    = 120.0,
    max_queue: Annotated[int, typer.Option(help="The server's --max-queue (beyond it: 429).")] = 4,
    warmup_minutes: Annotated[float | None, typer.Option(
        help="Memory is compared from here on (default: a tenth of the run, at least 0.2).", show_default=False)]
    = None,
    seed: Annotated[int, typer.Option(help="Seed of the traffic mix.")] = 0,
    out_file: Annotated[Path, typer.Option("--out", help="JSON results.")] = Path("runs/soak.json"),
    report: Annotated[Path | None, typer.Option(help="Also write the results as Markdown here.")] = None,
) -> None:
    """Soak the server: policies, budgets, chat and completions, streaming or not, clients that hang up."""
    from tokensieve.bench.soak import SoakConfig, markdown, soak

    if minutes <= 0 or clients < 1 or pool_mb <= 0 or max_queue < 0:
        raise TokensieveError("minutes and pool-mb must be positive, clients >= 1, max-queue >= 0")
    if warmup_minutes is not None and not 0 <= warmup_minutes < minutes:
        raise TokensieveError(f"warmup-minutes must be in [0, {minutes:g})")
    config = SoakConfig(model=model, minutes=minutes, clients=clients, pool_mb=pool_mb, max_queue=max_queue,
                        warmup_minutes=warmup_minutes, seed=seed)
    command = (f"tokensieve bench soak --model {model} --minutes {minutes:g} --clients {clients} "
               f"--pool-mb {pool_mb:g} --max-queue {max_queue} --seed {seed}")
    result = soak(config, progress=lambda line: err.print(line, highlight=False, soft_wrap=True))
    memory = result.memory(config.warmup_s)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"command": command, **asdict(result), "memory": memory}, indent=1))
    tmp.replace(out_file)
    text = markdown(result, command)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(text + "\n")
    out.print(text, highlight=False, soft_wrap=True)
    problems = []
    if result.outcomes.get("lost"):
        problems.append(f"{result.outcomes['lost']} requests lost")
    if result.drained_kv_bytes:
        problems.append(f"{result.drained_kv_bytes} KV bytes still in use once idle")
    if result.exit_code != 0:
        problems.append(f"the server exited {result.exit_code} after SIGTERM")
    if problems:
        err.print("error: " + "; ".join(problems), highlight=False, soft_wrap=True)
        raise typer.Exit(1)
