"""transformers' own quantized KV cache as a peer of the kv-store suite: `QuantizedCache` with its HQQ backend
(KIVI-style codes over groups of 64, the newest `residual_length` = 128 tokens at full precision, as transformers
sets them by default; the prompt is coded whole, the residual fills during decoding), on the plain model and its
own `generate`, with the same prompt ids and the same scoring as tokensieve's cells. It is the cache a
transformers user picks for memory.

Method strings: "hf:quantized@int4" and "hf:quantized@int2"; a suffix "-gN" quantizes over groups of N instead of
64 ("hf:quantized@int4-g32"), which spends more bytes on scales and zero-points: a comparison at equal bytes. The
peer keeps every token, so a cell's budget does not apply to it (as for `full@int4`). Bytes are every tensor the
cache holds after the prompt, codes, scales and zero-points included, found by walking the cache's layers rather
than by its own accounting.

hqq is pure Python on CPU and installs beside tokensieve (the `dev` extra): no venv of its own is needed.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import torch

from tokensieve.bench.peers.venv import PeerFailed
from tokensieve.core.tensors import storage_bytes, tensors_in

PEER = "hf:quantized"
BITS = {"int4": 4, "int2": 2}
BACKEND = "hqq"
GROUP = 64  # transformers' default q_group_size


def is_peer(method: str) -> bool:
    return method.partition("@")[0] == PEER


def settings_of(method: str) -> tuple[int, int]:
    """(code width, group size) a method string names, or PeerFailed for an unknown one."""
    name, _, kv_dtype = method.partition("@")
    kv_dtype, marked, group = kv_dtype.partition("-g")
    if name != PEER or kv_dtype not in BITS or (marked and not (group.isdigit() and int(group) > 0)):
        raise PeerFailed(f"unknown transformers quantized cache '{method}': choose from "
                         + ", ".join(f"{PEER}@{k}" for k in BITS) + " (optionally -gN: groups of N)")
    return BITS[kv_dtype], int(group) if marked else GROUP


def versions() -> dict[str, str]:
    found = {}
    for package in ("transformers", BACKEND):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "missing"
    return found


def held_bytes(cache) -> int:
    """Bytes of every tensor the cache's layers hold (codes, scales, zero-points, the full-precision residual)."""
    return storage_bytes([t for layer in cache.layers for t in tensors_in(layer)])


def quantized_cache(config, bits: int, group: int = GROUP):
    from transformers import QuantizedCache

    if versions()[BACKEND] == "missing":
        raise PeerFailed(f"{PEER} needs the {BACKEND} package: pip install -e '.[dev]' (scripts/setup.sh does)")
    return QuantizedCache(BACKEND, config, nbits=bits, q_group_size=group)


def run_peer(model: str, case: dict, method: str, budget: float, repeats: int) -> tuple[float | None, dict]:
    """One RULER or code cell through transformers' QuantizedCache: the prompt but its last token is prefilled
    into the cache (its bytes are measured there), then `generate` decodes greedily from it, stopping at a newline
    for single-line answers as tokensieve's cells do."""
    from tokensieve.bench import prompts, tasks
    from tokensieve.models import cached_load, model_lock

    bits, group = settings_of(method)
    if case["task"] not in tasks.PROMPT_TASKS:
        raise PeerFailed(f"{PEER} runs the RULER and code tasks, not {case['task']}")
    net, tok = cached_load(model)
    task = prompts.prompt_task(model, tuple(sorted(case.items())))
    ctx, question = prompts.prompt_ids(model, task)
    ids = torch.tensor([ctx + question], device=net.device)
    eos = [e for e in (net.generation_config.eos_token_id, tok.eos_token_id) if isinstance(e, int)]
    stops = eos + (list(tasks.newline_ids(model)) if task.stop_at_newline else [])
    with model_lock(net), torch.inference_mode():
        cache = quantized_cache(net.config, bits, group)
        net(input_ids=ids[:, :-1], cache=cache, use_cache=True, logits_to_keep=1)
        kept = held_bytes(cache)
        out = net.generate(ids, attention_mask=torch.ones_like(ids), cache=cache, do_sample=False,
                           max_new_tokens=task.max_new_tokens, eos_token_id=stops, pad_token_id=eos[0])
    new = [t for t in out[0, ids.shape[1]:].tolist() if t not in stops]
    answer = tok.decode(new, skip_special_tokens=True)
    answer = answer if task.plain else answer.strip()
    quality, detail = task.score(answer)
    prompt = ids.shape[1]
    text = net.config.get_text_config()
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    full = 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * torch.finfo(net.dtype).bits // 8
    return quality, {"answer": answer, **detail, "expected": list(task.expected), "prompt_tokens": prompt,
                     "new_tokens": len(new), "kv_bytes_full": full * prompt, "kv_bytes_kept": kept,
                     "kept_tokens": [prompt] * text.num_hidden_layers, "peer": versions(),
                     "budget_applies": False}
