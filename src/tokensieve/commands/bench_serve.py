"""`tokensieve bench serve`: throughput, latency and memory of the server under full cache and token budgets."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tokensieve.commands.common import Device, Model, err, guarded, out, whole_numbers
from tokensieve.errors import TokensieveError

DEFAULT_METHODS = "full,snapkv:0.125,tokenselect:0.125"
DEFAULT_PARTS = "sweep,batch,capacity,ttft"


@guarded
def bench_serve(
    model: Model = "smollm2-135m",
    methods: Annotated[str, typer.Option(help="Comma-separated policy[@kv_dtype][:budget][+kernel], full cache "
                                              "first; +kernel: dense decode attention through tokensieve's CPU "
                                              "kernel (part batch). Engine vllm: full,snapkv:0.125.")]
    = DEFAULT_METHODS,
    concurrency: Annotated[str, typer.Option(help="Clients at once, comma-separated.")] = "1,4,8,16",
    prompt_tokens: Annotated[int, typer.Option(help="Tokens per prompt.")] = 4096,
    new_tokens: Annotated[int, typer.Option(help="Tokens generated per request.")] = 128,
    pool_mb: Annotated[float, typer.Option(help="KV pool of the served-at-once test (default: room for two "
                                                "full-cache requests).")] = 0.0,
    short_tokens: Annotated[int, typer.Option(help="The short request of the TTFT-under-load test.")] = 128,
    parts: Annotated[str, typer.Option(help="Which measurements: sweep, batch, capacity, ttft (comma-separated; "
                                            "engine vllm: batch, capacity).")] = DEFAULT_PARTS,
    batch: Annotated[int, typer.Option(help="Sequences of the decode-at-full-batch measurement.")] = 8,
    requests: Annotated[int, typer.Option(help="Engine vllm: requests sent in the capacity part (0: --batch).")] = 0,
    pool_requests: Annotated[int, typer.Option(help="Engine vllm: the capacity pool holds this many full-cache "
                                                    "requests.")] = 2,
    block_size: Annotated[int, typer.Option(help="Engine vllm: vLLM's paged block size (a multiple of 32; the "
                                                 "plugin keeps and frees whole blocks).")] = 128,
    out_file: Annotated[Path, typer.Option("--out", help="JSON results (merged with earlier runs of the same "
                                                         "trace).")] = Path("runs/serve.json"),
    report: Annotated[Path | None, typer.Option(help="Also write the results as Markdown here.")] = None,
    device: Device = "cpu",
    engine: Annotated[str, typer.Option(help="tokensieve (our server), or vllm (vLLM as shipped for `full`, with "
                                             "the plugin for a policy; parts batch and capacity).")] = "tokensieve",
) -> None:
    """Serve a request trace at several concurrencies for each method, and measure what it buys."""
    if engine == "vllm":
        return _bench_vllm(model, methods, prompt_tokens, new_tokens, parts, batch, requests or batch, pool_requests,
                           out_file, block_size)
    if engine != "tokensieve":
        raise TokensieveError(f"unknown engine '{engine}': use tokensieve or vllm")
    from tokensieve.bench import serving as bench
    from tokensieve.core.budget import parse_budget
    from tokensieve.methods import make

    chosen = [bench.Method.parse(m) for m in methods.split(",") if m.strip()]
    for method in chosen:
        if not 0 < method.budget <= 1:
            raise TokensieveError(f"budget {method.budget} of {method.policy} is outside (0, 1]")
        make(method.policy, budget=parse_budget(method.budget))
    levels = whole_numbers(concurrency)
    wanted = {p.strip() for p in parts.split(",") if p.strip()}
    if not wanted or wanted - {"sweep", "batch", "capacity", "ttft", "report"}:
        raise TokensieveError(f"parts must be among sweep, batch, capacity, ttft, report; got '{parts}'")
    if prompt_tokens < 64 or new_tokens < 2:
        raise TokensieveError("prompt-tokens must be >= 64 and new-tokens >= 2")
    if any(m.engine_options for m in chosen) and wanted - {"batch", "report"}:
        raise TokensieveError("a +kernel or +gemm method is measured in the batch part only: pass --parts batch")
    results: dict = json.loads(out_file.read_text()) if out_file.is_file() else {}
    if results and (results.get("model"), results.get("prompt_tokens"), results.get("new_tokens")) != (
            model, prompt_tokens, new_tokens):
        raise TokensieveError(f"{out_file} holds another model or trace; pass a new --out")
    if wanted == {"report"} and not results:
        raise TokensieveError(f"no results at {out_file} to report")
    results.update({"model": model, "prompt_tokens": prompt_tokens, "new_tokens": new_tokens})
    if wanted != {"report"}:
        options = [("model", model), ("methods", methods), ("concurrency", concurrency),
                   ("prompt-tokens", prompt_tokens), ("new-tokens", new_tokens), ("parts", parts),
                   ("pool-mb", pool_mb or None), ("short-tokens", short_tokens), ("batch", batch),
                   ("device", device), ("out", out_file)]  # everything the tokensieve engine's parts read
        command = "tokensieve bench serve " + " ".join(f"--{k} {shlex.quote(str(v))}" for k, v in options
                                                       if v is not None)
        results["commands"] = [c for c in results.get("commands", []) if c != command] + [command]
    out_file.parent.mkdir(parents=True, exist_ok=True)

    def save():
        tmp = out_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(out_file)

    if "sweep" in wanted:
        def keep(row) -> None:  # each trace is saved as it ends; a rerun replaces its own rows only
            err.print(row, highlight=False)
            earlier = [r for r in results.get("sweep", []) if (r["method"], r["concurrency"]) !=
                       (row.method, row.concurrency)]
            results["sweep"] = sorted([*earlier, vars(row)], key=lambda r: r["concurrency"])
            save()

        _sweep_table(bench.concurrency_sweep(model, chosen, levels, prompt_tokens, new_tokens, device,
                                             progress=keep))
    if "batch" in wanted:
        results["batch"] = bench.decode_at_batch(model, chosen, batch, prompt_tokens, new_tokens, device,
                                                 progress=lambda r: err.print(r, highlight=False))
        save()
    if "capacity" in wanted:
        from tokensieve.models import cached_load
        from tokensieve.serve.pool import Footprint

        net, tokenizer = cached_load(model, device)
        real = len(tokenizer(bench.prompts_for(tokenizer, prompt_tokens, 1)[0]).input_ids)  # with its question
        pool = pool_mb or 2 * Footprint.of(net).decode_bytes(real, new_tokens, make("full")) / 2**20
        results["capacity"] = [bench.served_at_once(model, m, pool, prompt_tokens, new_tokens,
                                                    requests=64, device=device) for m in chosen]
        save()
        out.print(results["capacity"])
    if "ttft" in wanted:
        results["ttft"] = bench.ttft_under_load(model, chosen[0], prompt_tokens, short_tokens, device=device)
        save()
        out.print(results["ttft"])
    if report is not None:
        report.write_text(bench.markdown(results) + "\n")
        err.print(f"wrote {report}")
    err.print(f"wrote {out_file}")


def _bench_vllm(model: str, methods: str, prompt_tokens: int, new_tokens: int, parts: str, batch: int,
                requests: int, pool_requests: int, out_file: Path, block_size: int = 128) -> None:
    from tokensieve.bench import vllm_serving
    from tokensieve.bench.serving import Method

    if methods == DEFAULT_METHODS:  # the plugin runs KV policies only
        methods = "full,snapkv:0.125"
    chosen = [Method.parse(m) for m in methods.split(",") if m.strip()]
    if any(m.engine_options for m in chosen):
        raise TokensieveError("+kernel and +gemm are tokensieve's engine options; vLLM runs its own kernels")
    vllm_serving.check(chosen)
    if requests < 1 or pool_requests < 1 or batch < 1:
        raise TokensieveError("batch, requests and pool-requests must be >= 1")
    if block_size < 32 or block_size % 32:
        raise TokensieveError(f"--block-size {block_size}: vLLM's CPU attention needs a multiple of 32")
    if parts == DEFAULT_PARTS:
        parts = "batch,capacity"
    wanted = {p.strip() for p in parts.split(",") if p.strip()}
    if not wanted or wanted - {"batch", "capacity"}:
        raise TokensieveError(f"--engine vllm measures parts batch and capacity; got '{parts}'")
    if out_file == Path("runs/serve.json"):
        out_file = Path("runs/serve-vllm.json")
    command = (f"tokensieve bench serve --engine vllm --model {model} --methods {methods} --prompt-tokens "
               f"{prompt_tokens} --new-tokens {new_tokens} --batch {batch} --requests {requests} --pool-requests "
               f"{pool_requests} --block-size {block_size} --parts {parts} --out {out_file}")
    results: dict = json.loads(out_file.read_text()) if out_file.is_file() else {}
    if results and (results.get("model"), results.get("prompt_tokens"), results.get("new_tokens")) != (
            model, prompt_tokens, new_tokens):
        raise TokensieveError(f"{out_file} holds another model or trace; pass a new --out")
    results.update({"model": model, "prompt_tokens": prompt_tokens, "new_tokens": new_tokens, "command": command})
    show = lambda row: err.print(row, highlight=False)  # noqa: E731
    if "batch" in wanted:
        results["batch"] = vllm_serving.decode_at_batch(model, chosen, batch, prompt_tokens, new_tokens, show,
                                                        block_size)
    if "capacity" in wanted:
        results["capacity"] = vllm_serving.served_at_once(model, chosen, prompt_tokens, new_tokens, requests,
                                                          pool_requests, show, block_size)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    tmp.replace(out_file)
    err.print(f"wrote {out_file}")


def _sweep_table(rows) -> None:
    table = Table("method", "clients", "decode tok/s", "at full batch", "prefill s", "TTFT p50", "TTFT p95",
                  "per-token p50", "per-token p95", "peak RSS MB")
    for r in rows:
        table.add_row(r.method, str(r.concurrency), f"{r.decode_tok_s:.1f}",
                      f"{r.full_batch_tok_s:.1f}" if r.full_batch_tok_s else "–", f"{r.prefill_s:.1f}",
                      *(f"{v:.3f}" if v is not None else "–" for v in (r.ttft_p50, r.ttft_p95, r.tpot_p50,
                                                                        r.tpot_p95)),
                      f"{r.peak_rss_mb:.0f}" if r.peak_rss_mb else "–")
    out.print(table)
