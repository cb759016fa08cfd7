"""Speculative decoding on one sequence under any policy: prefill as `generate` does, then tree steps.

load model -> apply policy -> prefill -> [draft -> verify the tree in one forward -> accept -> roll back] -> stats.
Greedy acceptance makes it lossless: the tokens are those of `tokensieve.run.generate` (plain greedy).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Unpack

import torch

from tokensieve import models
from tokensieve.core.budget import Budget
from tokensieve.core.cache import SieveCache
from tokensieve.core.gemm import FROM_ROWS, packed_linears
from tokensieve.core.hooks import apply
from tokensieve.core.memory import PeakMemory, device_sync, now
from tokensieve.core.policy import Policy
from tokensieve.core.registry import Registry
from tokensieve.decode.adjacency import Adjacency
from tokensieve.decode.drafters import CPU_TREE, LayerSkip, Lookup, Recycling
from tokensieve.decode.suffix import MAX_NODES, CostCurve, Suffix, SuffixCache
from tokensieve.decode.tree import DraftTree
from tokensieve.decode.verify import Verifier, accept
from tokensieve.errors import TokensieveError
from tokensieve.models import model_lock
from tokensieve.run import Batch, Result, RunOptions, Stats, feed_prompt, set_up, stored_token_counts
from tokensieve.weights import COMPILED_ROWS, precision_of


@dataclass
class DecodeStats(Stats):
    """`Stats` plus what a drafter did. decode_tok_s is the wall rate of generated tokens after the first."""

    decode: str = "greedy"
    steps: int = 0  # verification forwards
    accepted_per_step: float = 0.0  # tokens each verification forward yielded (accepted drafts + 1), mean
    accepted_hist: dict = field(default_factory=dict)  # tokens per step -> steps
    draft_nodes: float = 0.0  # tree nodes verified per step (root included), mean
    draft_s: float = 0.0  # of the decode time: drafting
    adjacency_bytes: int = 0  # the drafter's extra memory (Token Recycling's matrix)


@dataclass
class DecodeOptions:
    """How a drafter drafts: the tree (Token Recycling), the chain length (lookup, layer-skip)."""

    tree: DraftTree | None = None
    k: int = 8
    adjacency: Adjacency | None = None  # warm start: the matrix of earlier requests (kept updated in place)
    length: int = 8  # lookup / layer-skip chain length
    exit_layer: int = 0  # layer-skip: 0 = a quarter of the layers
    packed_gemm: bool = False  # verify trees through prepacked oneDNN linears (`core.gemm`; CPU, fp32); the
    # prompt too with `RunOptions` packed_gemm, as greedy `generate` takes it
    packed_from_rows: int = FROM_ROWS  # with packed_gemm: the fewest rows of a product that take them
    cost: CostCurve | None = None  # suffix: the verification cost curve (None: measured once per model)
    suffix: SuffixCache | None = None  # suffix: the trie shared across requests (warm start; kept updated)


def _recycling(net, verifier: Verifier, options: DecodeOptions) -> Recycling:
    vocab = net.get_output_embeddings().weight.shape[0]
    adjacency = options.adjacency or Adjacency(vocab, options.k, device=net.device)
    if adjacency.table.shape[0] != vocab:
        raise TokensieveError(f"the adjacency matrix has {adjacency.table.shape[0]} rows, the vocabulary {vocab}")
    tree = options.tree or DraftTree.by_prior(**{**CPU_TREE, "k": min(CPU_TREE["k"], adjacency.k)})
    return Recycling(adjacency, tree)


def _suffix(net, verifier: Verifier, options: DecodeOptions) -> Suffix:
    shared = options.suffix or SuffixCache()
    rows = exact_rows(net, verifier.session.kernels)
    nodes = MAX_NODES if rows is None else min(MAX_NODES, rows - 1)  # the root is a row too
    key = (repr(verifier.session.policy), options.packed_gemm, options.packed_from_rows, precision_of(net),
           verifier.session.kernels)
    return Suffix(options.cost, shared, verifier, cost_key=key, max_nodes=nodes)


DRAFTERS: Registry[Callable] = Registry("decoder", {
    "recycling": _recycling,
    "lookup": lambda net, verifier, options: Lookup(length=options.length),
    "layerskip": lambda net, verifier, options: LayerSkip(net, verifier, exit_layer=options.exit_layer,
                                                          length=options.length),
    "suffix": _suffix,
}, builtin=("greedy",))  # greedy drafts nothing
DECODERS = DRAFTERS.names()


def exact_rows(net, kernels: bool) -> int | None:
    """The most tokens a verification forward may take and still equal one-token steps up to float rounding, which
    is what keeps tree decoding exactly greedy: any number on fp32 weights (None); on int8 weights only through the
    compiled product (`kernels`, CPU), which multiplies float32 rows each on its own, up to `COMPILED_ROWS`. Any
    other weights are refused: bf16 activations turn a wide forward's last-bit differences from one-token steps
    into 0.4 % of the logits (docs/WEIGHTS.md)."""
    weights = precision_of(net)
    if weights == "fp32":
        return None
    if weights == "int8" and kernels and net.device.type == "cpu":
        return COMPILED_ROWS
    raise TokensieveError(f"tree decoding is lossless on fp32 weights, or on int8 weights with the decode kernel on "
                          f"CPU (float32 activations); weights {weights} decode greedily")


def check_rows(drafter, rows: int | None) -> None:
    """Refuse a drafter whose widest forward (root included) would leave the exact path."""
    if rows is not None and drafter.max_nodes > rows:
        raise TokensieveError(f"this drafter verifies up to {drafter.max_nodes} tokens a step; int8 weights stay "
                              f"exactly greedy up to {rows}")


def make_drafter(name: str, net, verifier: Verifier, options: DecodeOptions):
    return DRAFTERS.require(name)(net, verifier, options)


def speculate(
    model: str = models.DEFAULT_MODEL,
    context: str = "",
    question: str = "",
    policy: str | Policy = "full",
    budget: float | str | Budget = 1.0,
    *,
    decode: str = "recycling",
    options: DecodeOptions | None = None,
    **run_options: Unpack[RunOptions],
) -> Result:
    """`run.generate` for one query-aware sequence, decoded by `decode`'s drafter and tree verification; the
    `RunOptions` are generate's."""
    if decode == "greedy":
        from tokensieve.run import generate

        return generate(model, context, question, policy, budget, **run_options)
    DRAFTERS.require(decode)
    options = options or DecodeOptions()
    run = set_up(model, [context], [question], policy, budget, **run_options)
    if run.kv_dtype != "fp":
        raise TokensieveError(f"tree decoding keeps a full-precision cache; kv_dtype {run.kv_dtype} decodes greedily")
    weights = precision_of(run.net)
    if options.packed_gemm and weights != "fp32":  # set_up refuses the run's own packed_gemm alike
        raise TokensieveError(f"packed linears prepack fp32 weights; weights {weights} have nothing to pack")
    packed = options.packed_gemm or run.packed_gemm
    rows = exact_rows(run.net, run.decode_kernel)
    net, policy_obj, budget, max_new_tokens = run.net, run.policy, run.budget, run.max_new_tokens
    ids = run.contexts[0] + run.questions[0]
    batch = Batch.left_padded([ids], 0, net.device)
    evicts = policy_obj.evicts()
    with model_lock(net), torch.inference_mode(), PeakMemory(net.device) as peak, \
            apply(net, policy_obj, [len(ids)], decode_kernel=run.decode_kernel) as session:
        cache_ = SieveCache(net.config)
        verifier = Verifier(net, cache_, session)
        drafter = make_drafter(decode, net, verifier, options)
        check_rows(drafter, rows)
        room = max_new_tokens + drafter.max_nodes  # the tree's temporary rows need spare room too
        for layer in cache_.sieve_layers.values():
            layer.reserve = 0 if evicts else len(ids) + room
        session.decode_room = room
        start = now()
        with packed_linears(net, options.packed_from_rows) if run.packed_gemm else nullcontext():
            logits = feed_prompt(net, batch, cache_, 0, len(ids), run.chunk)
        device_sync(net.device)
        prefill_s = now() - start
        kv_full, kv_kept = cache_.full_kv_bytes(), cache_.kv_bytes()
        kept = stored_token_counts(cache_, 0)
        with packed_linears(net, options.packed_from_rows) if packed else nullcontext():
            drafter.prepare()
            start = now()
            decoded = decode_tree(verifier, drafter, ids, int(logits[0].argmax()), max_new_tokens, run.ended)
        device_sync(net.device)
        decode_s = now() - start
        kv_end = cache_.kv_bytes()
        kept_end = stored_token_counts(cache_, 0)
    usage = session.usage
    extra = drafter.adjacency.table.nbytes + drafter.adjacency.written.nbytes if decode == "recycling" else 0
    generated, steps, hist = decoded.generated, decoded.steps, decoded.hist
    stats = DecodeStats(
        policy=policy_obj.name, budget=budget.value, prompt_tokens=len(ids), new_tokens=len(generated),
        prefill_s=round(prefill_s, 4), decode_tok_s=round((len(generated) - 1) / decode_s, 3) if steps else 0.0,
        peak_rss_mb=round(peak.rss_mb, 1), kv_bytes_full=kv_full, kv_bytes_kept=kv_kept, kv_bytes_end=kv_end,
        kept_tokens=kept, kept_tokens_end=kept_end, attended_tokens=usage.attended_summary(),
        dense_fallbacks=usage.dense_fallbacks, dense_fallbacks_decode=usage.dense_decode,
        evictions=session.evictions, chunk=run.chunk, evict_every=policy_obj.decode_evict_every(),
        device=str(net.device), peak_device_mb=peak.device_mb, decode=decode, steps=steps,
        accepted_per_step=round(sum(k * v for k, v in hist.items()) / steps, 3) if steps else 0.0,
        accepted_hist=dict(sorted(hist.items())), draft_nodes=round(decoded.nodes / steps, 2) if steps else 0.0,
        draft_s=round(decoded.draft_s, 4), adjacency_bytes=extra,
    )
    return Result(answer=run.answer(generated), token_ids=generated, stats=stats)


@dataclass
class TreeRun:
    generated: list[int]
    steps: int = 0
    nodes: int = 0  # tree nodes verified, all steps
    draft_s: float = 0.0
    hist: dict = field(default_factory=dict)  # tokens yielded per step -> steps


def decode_tree(verifier: Verifier, drafter, prompt: list[int], first: int, max_new_tokens: int,
                finished: Callable[[list[int], int], bool]) -> TreeRun:
    """From the prompt's argmax `first`: draft, verify the tree in one forward, accept, roll back, until
    `finished(generated, token)`. A step never drafts past `max_new_tokens` nor past a decode eviction point."""
    drafter.start(prompt)
    run = TreeRun([first])
    done, root = finished(run.generated, first), first
    device = next(iter(verifier.layers.values())).keys.device
    while not done:
        room = verifier.room()
        depth = max_new_tokens - len(run.generated) - 1
        depth = depth if room is None else min(depth, room - 1)
        mark = now()
        tree, tokens = drafter.draft(root, prompt + run.generated[:-1], depth)
        run.draft_s += now() - mark
        tokens = tokens.to(device)
        logits = verifier.forward(tree, tokens)
        drafter.observe(tokens, logits)
        path, new = accept(tree, tokens.tolist(), logits.argmax(-1).tolist())
        verifier.rollback(path, tree.size)
        run.steps, run.nodes = run.steps + 1, run.nodes + tree.size
        run.hist[len(new)] = run.hist.get(len(new), 0) + 1
        for token in new:
            run.generated.append(token)
            done = finished(run.generated, token)
            if done:
                break
        root = run.generated[-1]
    drafter.finish(run.generated)
    return run
