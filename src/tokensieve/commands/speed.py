"""Measured speed of dynamic/sparse attention vs dense: the `speed` sub-app (decode · prefill · kernel)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from tokensieve.commands.common import Device, Model, guarded, out
from tokensieve.errors import TokensieveError

speed_app = typer.Typer(no_args_is_help=True, help="Measured speed of dynamic/sparse attention vs dense.")
Methods = Annotated[str, typer.Option(help="Comma-separated policies to compare with full attention.")]


def _speed_methods(methods: str, budget: float) -> list[str]:
    """Comma-separated policy names, each checked (with the budget) before any model work."""
    from tokensieve.core.budget import parse_budget
    from tokensieve.methods import make

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
    from tokensieve.bench.speed import decode_speed

    rows = decode_speed(model, tokens, budget, _speed_methods(methods, budget), steps, repeats, device)
    _speed_table(rows, f"decode speed, median of {repeats}", as_json)


@speed_app.command("prefill")
@guarded
def speed_prefill(
    model: Model = "smollm2-135m",
    tokens: Annotated[int, typer.Option(help="Prompt length (real prose).")] = 8000,
    budget: Annotated[float, typer.Option(help="Ratio of earlier keys each query block attends to (sparse "
                                              "prefill), or of the prompt carried past the last stage (skipping).")]
    = 0.125,
    methods: Methods = "hisa",
    block: Annotated[int, typer.Option(help="Query/key block size of the sparse prefill.")] = 128,
    repeats: int = 3,
    option: Annotated[list[str] | None, typer.Option("--set", help="Option key=value for every compared method "
                                                     "(repeatable), e.g. --set layer=0.4")] = None,
    device: Device = "cpu",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Prefill seconds (with a FLOPs estimate) and perplexity: dense sdpa vs block-sparse prefill or prefill token
    skipping (fastv, spts, gemfilter, fastv+hisa) on the same prompt."""
    from tokensieve.bench.speed import prefill_speed, speed_policy
    from tokensieve.methods import parse_options

    names = _speed_methods(methods, budget)
    options = parse_options(option or [])
    for name in names:
        if name != "full":
            speed_policy(name, budget, block, 512, options)  # a bad option fails before any model work
    rows = prefill_speed(model, tokens, budget, names, repeats, device=device, block=block, options=options)
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
    from tokensieve.bench.kernel_speed import kernel_speed

    if repeats < 1 or tokens < 64:
        raise TokensieveError("--repeats must be >= 1 and --tokens >= 64")
    rows = kernel_speed(model, tokens, budget, _speed_methods(methods, budget), repeats, compiled, device)
    _speed_table(rows, f"one layer's decode attention, median of {repeats}", as_json)
