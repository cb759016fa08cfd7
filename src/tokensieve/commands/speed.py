"""Measured speed of dynamic/sparse attention vs dense: the `speed` sub-app (decode · prefill · kernel)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from tokensieve.commands.common import Device, Model, guarded, out, whole_numbers
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


@speed_app.command("gemm")
@guarded
def speed_gemm(
    model: Model = "qwen2.5-coder-0.5b",
    paths: Annotated[str, typer.Option(help="Comma-separated: aten (today's), onednn, bf16, int8 (dynamic), "
                                            "int8w (--weights int8).")]
    = "aten,onednn,bf16,int8,int8w",
    rows: Annotated[str, typer.Option(help="Comma-separated token counts M of a forward.")] = "1,2,4,8,13,16,32,64",
    repeats: int = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The model's own linear layers at M tokens per forward, per GEMM path, in one-token steps, with the
    arithmetic floor (CPU)."""
    from tokensieve.bench.gemm_speed import PATHS, gemm_speed
    from tokensieve.models import cached_load

    chosen = tuple(p.strip() for p in paths.split(",") if p.strip())
    if not chosen or set(chosen) - set(PATHS):
        raise TokensieveError(f"paths must be among {', '.join(PATHS)}; got '{paths}'")
    counts = tuple(whole_numbers(rows))
    if 1 not in counts or repeats < 1:
        raise TokensieveError("rows must include 1 (the unit of the table), and repeats must be >= 1")
    result = gemm_speed(cached_load(model)[0], counts, chosen, repeats)
    if as_json:
        print(json.dumps(result))
        return
    table = Table(title=f"{model}: an M-token forward's linear layers, in one-token steps of aten (median of "
                        f"{repeats}); floor: FLOPs at {result[0]['gflops_peak']} GFLOP/s or weights at "
                        f"{result[0]['read_gb_s']} GB/s")
    for column in ("M", *chosen, "floor", "aten ms"):
        table.add_column(column)
    for m in counts:
        cells = {r["path"]: r for r in result if r["rows"] == m}
        table.add_row(str(m), *(f"{cells[p]['steps']:.2f}" for p in chosen), f"{cells[chosen[0]]['floor_steps']:.2f}",
                      f"{cells['aten']['linear_ms']:.2f}" if "aten" in cells else "")
    out.print(table)

