"""Answering with a KV policy: generate · demo · haystack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tokensieve.commands.common import Device, Model, Weights, err, guarded, out, read_text
from tokensieve.errors import TokensieveError


@guarded
def generate(
    question: Annotated[str, typer.Option("--question", "-q", help="The question asked about the context.")],
    context_file: Annotated[Path, typer.Option("--context-file", "-c", help="UTF-8 text file ('-' = stdin).")],
    model: Model = "smollm2-135m",
    policy: Annotated[str, typer.Option("--policy", "-p", help="KV policy (see `tokensieve policies`).")] = "snapkv",
    budget: Annotated[str, typer.Option(help="Ratio in (0, 1] of the prompt, or a token count per layer.")] = "0.25",
    chunk: Annotated[int | None, typer.Option(help="Prefill in chunks of N tokens, evicting after each.")] = None,
    evict_every: Annotated[int | None, typer.Option(
        help="KV policies: also evict during decode whenever a layer holds capacity + N tokens (0 = off; "
             "default: off, except streaming_llm, which evicts every 32).")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens to generate at most.")] = 32,
    answer_prefix: Annotated[str, typer.Option(help="Text the answer starts with (completion style).")] = "",
    query_agnostic: Annotated[bool, typer.Option("--query-agnostic",
                                                 help="Compress the context before the question is seen.")] = False,
    sinks: Annotated[int, typer.Option(help="Leading tokens always kept (attention sinks).")] = 4,
    window: Annotated[int, typer.Option(help="Most recent tokens always kept.")] = 32,
    device: Device = "cpu",
    weights: Weights = "fp32",
    kv_dtype: Annotated[str, typer.Option(help="KV storage: fp (compute dtype), int8 or int4 (KIVI-style codes; "
                                          "sinks and the newest rows stay fp).")] = "fp",
    option: Annotated[list[str] | None, typer.Option("--set", help="Policy option key=value (repeatable), "
                                                     "e.g. --set observe=64 --set sparse_prefill=true")] = None,
    decode: Annotated[str, typer.Option(help="Decoding: greedy, or lossless tree decoding drafted by recycling "
                                        "(Token Recycling), lookup (prompt lookup), layerskip (early exit) or "
                                        "suffix (SuffixDecoding; tree size from the measured cost).")]
    = "greedy",
    tree_nodes: Annotated[int | None, typer.Option(help="recycling: draft nodes per step (default 12).")] = None,
    tree_depth: Annotated[int | None, typer.Option(help="recycling: draft levels (default 5).")] = None,
    draft_length: Annotated[int, typer.Option(help="lookup / layerskip: draft tokens per step.")] = 8,
    exit_layer: Annotated[int, typer.Option(help="layerskip: layers that draft (0 = a quarter).")] = 0,
    packed_gemm: Annotated[bool, typer.Option("--packed-gemm", help="Products of 3 rows or more (prefill pieces, "
                                              "tree verification) through oneDNN linears, weights prepacked (CPU, "
                                              "fp32; a second weight copy); one-token steps unchanged.")]
    = False,
    decode_kernel: Annotated[bool, typer.Option(
        "--decode-kernel", help="CPU: dense one-token decode steps attend through tokensieve's kernel, "
                                "Quest's decode step runs as one compiled call, and int8 weights' small products "
                                "keep float32 activations, which lets trees decode int8 losslessly (equal up to "
                                "float rounding; built once, about 40 s)."
    )] = False,
    adjacency: Annotated[Path | None, typer.Option(help="recycling: warm-start the adjacency matrix from this "
                                                   "file if it exists, and save it there afterwards.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object: answer and stats.")] = False,
) -> None:
    """Answer a question about a long document with a KV policy, and report what it cost."""
    from tokensieve.core.budget import parse_budget
    from tokensieve.methods import make, parse_options
    from tokensieve.run import generate as run

    context = read_text(context_file, "the context file")
    policy = make(policy, parse_budget(budget, sinks=sinks, window=window), **parse_options(option or []))
    if decode != "greedy":
        result = speculate_cli(model, context, question, policy, budget, decode, tree_nodes, tree_depth,
                               draft_length, exit_layer, adjacency, packed_gemm=packed_gemm, chunk=chunk,
                               max_new_tokens=max_new_tokens,
                               answer_prefix=answer_prefix, sinks=sinks, window=window, evict_every=evict_every,
                               device=device, weights=weights, query_agnostic=query_agnostic,
                               kv_dtype=kv_dtype, decode_kernel=decode_kernel)
    else:
        result = run(model, context, question, policy, budget, chunk=chunk, max_new_tokens=max_new_tokens,
                     query_aware=not query_agnostic, answer_prefix=answer_prefix, sinks=sinks, window=window,
                     evict_every=evict_every, device=device, weights=weights, kv_dtype=kv_dtype,
                     decode_kernel=decode_kernel, packed_gemm=packed_gemm)
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    out.print(f"[bold]answer:[/] {result.answer}")
    out.print(cost_table([result]))


def speculate_cli(model, context, question, policy, budget, decode, tree_nodes, tree_depth, draft_length,
                  exit_layer, adjacency, *, query_agnostic: bool, packed_gemm: bool = False, **kwargs):
    """`generate --decode X`: check the decoder's options, warm-start and save the adjacency matrix."""
    from tokensieve.decode.adjacency import Adjacency
    from tokensieve.decode.drafters import CPU_TREE
    from tokensieve.decode.loop import DECODERS, DecodeOptions, speculate
    from tokensieve.decode.tree import DraftTree
    from tokensieve.models import cached_load

    if decode not in DECODERS:
        raise TokensieveError(f"unknown decoder '{decode}': choose from {', '.join(DECODERS)}")
    if query_agnostic:
        raise TokensieveError("--query-agnostic applies to greedy decoding only")
    if draft_length < 1:
        raise TokensieveError(f"--draft-length must be at least 1, got {draft_length}")
    options = DecodeOptions(length=draft_length, exit_layer=exit_layer, packed_gemm=packed_gemm)
    if tree_nodes is not None or tree_depth is not None:
        shape = {**CPU_TREE, **({"nodes": tree_nodes} if tree_nodes is not None else {}),
                 **({"depth": tree_depth} if tree_depth is not None else {})}
        options.tree = DraftTree.by_prior(**shape)
    if adjacency is not None and decode == "recycling" and adjacency.exists():
        net, _ = cached_load(model, kwargs["device"], kwargs["weights"])
        options.adjacency = Adjacency.load(adjacency, net.get_output_embeddings().weight.shape[0], net.device)
        options.k = options.adjacency.k
    elif adjacency is not None and decode == "recycling":
        if not adjacency.parent.is_dir():
            raise TokensieveError(f"cannot save the adjacency matrix: {adjacency.parent} is not a directory")
        net, _ = cached_load(model, kwargs["device"], kwargs["weights"])
        options.adjacency = Adjacency(net.get_output_embeddings().weight.shape[0], options.k, net.device)
    result = speculate(model, context, question, policy, budget, decode=decode, options=options, **kwargs)
    if adjacency is not None and decode == "recycling":
        options.adjacency.save(adjacency)
    return result


def cost_table(results) -> Table:
    table = Table(title="cost (measured)")
    for col in ("policy", "budget", "answer", "prompt tok", "kept tok/layer", "attended/step", "KV MB",
                "prefill s", "decode tok/s", "peak RSS MB"):
        table.add_column(col, overflow="fold")
    for r in results:
        s = r.stats
        kept = sum(s.kept_tokens) / max(len(s.kept_tokens), 1)
        attended = f"{s.attended_tokens['mean']:.0f} (max {s.attended_tokens['max']})"
        table.add_row(s.policy, f"{s.budget:g}", r.answer[:40], str(s.prompt_tokens), f"{kept:.0f}", attended,
                      f"{s.kv_bytes_kept / 2**20:.1f} / {s.kv_bytes_full / 2**20:.1f}", f"{s.prefill_s:.2f}",
                      f"{s.decode_tok_s:.1f}", f"{s.peak_rss_mb:.0f}")
    return table


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
    from tokensieve.data.needle import needle_case
    from tokensieve.methods import make
    from tokensieve.models import cached_load
    from tokensieve.run import generate as run

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


def register(app: typer.Typer) -> None:
    app.command()(generate)
    app.command()(demo)
    app.command()(haystack)
