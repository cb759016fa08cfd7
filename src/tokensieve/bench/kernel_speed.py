"""Speed of one layer's decode attention, without the rest of the model: dense sdpa vs each selector's `attend`.

The keys and values have the model's head shapes and sit in a growable cache buffer, as in a real decode step;
a fresh random query per call means TokenSelect's selection cache never hits (its worst case; `speed decode`
reports real hit rates). With `compiled`, each method's `attend` also runs through `torch.compile` so the
eager and compiled kernels are timed side by side, interleaved, in one process.
"""

from __future__ import annotations

import statistics

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from tokensieve.core.hooks import attention_modules
from tokensieve.core.memory import now
from tokensieve.core.session import Session
from tokensieve.core.tensors import append_rows
from tokensieve.methods import make
from tokensieve.models import cached_load


def _layer_inputs(model, tokens: int, generator: torch.Generator):
    module = next(m for m in attention_modules(model) if getattr(m, "sliding_window", None) is None)
    text = model.config.get_text_config()
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    kv_heads, device = text.num_key_value_heads, model.device

    def rand(*shape):
        return torch.randn(*shape, generator=generator).to(device)

    keys = append_rows(append_rows(None, rand(1, kv_heads, tokens - 1, head_dim)), rand(1, kv_heads, 1, head_dim))
    values = append_rows(append_rows(None, rand(1, kv_heads, tokens - 1, head_dim)), rand(1, kv_heads, 1, head_dim))
    return module, keys, values, lambda: rand(1, text.num_attention_heads, 1, head_dim)


@torch.inference_mode()
def kernel_speed(model_name: str, tokens: int, budget: float, methods: list[str], repeats: int = 50,
                 compiled: bool = False, device: str = "cpu") -> list[dict]:
    model, _ = cached_load(model_name, device)
    module, keys, values, query = _layer_inputs(model, tokens, torch.Generator().manual_seed(0))
    runs = {"full": lambda q, s: sdpa_attention_forward(module, q, keys, values, None)}
    sessions: dict[str, Session | None] = {"full": None}
    for name in methods:
        if name == "full":
            continue
        variants = {name: lambda q, s, p: p.attend(s, module, q, keys, values, None)}
        if compiled:
            variants[f"{name}+compile"] = torch.compile(lambda q, s, p: p.attend(s, module, q, keys, values, None),
                                                        dynamic=True)
        for label, attend in variants.items():
            policy = make(name, budget)
            sessions[label] = Session(policy=policy, dense=sdpa_attention_forward)  # no cache: a bare layer
            policy.prepare(sessions[label], model)  # model-specific tables (FASA's calibration)
            runs[label] = lambda q, s, p=policy, attend=attend: attend(q, s, p)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for name, run in runs.items():  # warm-up: first-call work, pooled caches, compilation
        for _ in range(3):
            run(query(), sessions[name])
    for _ in range(repeats):
        for name, run in runs.items():  # interleaved, so drift on a shared machine hits every method alike
            q = query()
            start = now()
            run(q, sessions[name])
            if keys.is_cuda:  # kernels are asynchronous there
                torch.cuda.synchronize()
            times[name].append(now() - start)
    full_ms = 1e3 * statistics.median(times["full"])
    return [{"method": name, "budget": 1.0 if name == "full" else budget, "context_tokens": tokens,
             "ms_per_layer": round(1e3 * statistics.median(t), 3),
             "speedup": round(full_ms / (1e3 * statistics.median(t)), 3), "repeats": repeats}
            for name, t in times.items()]
