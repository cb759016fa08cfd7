"""kvpress presses as methods in the same grid through a worker in kvpress's own venv.

kvpress pins an older transformers than ours, so it lives in `~/.cache/tokensieve/peers/kvpress-venv`
(`tokensieve peers setup` creates it: CPU torch first, then kvpress). The worker (kvpress_worker.py, standalone)
loads the same converted safetensors model dir and receives the exact prompt token ids our methods see; it
answers JSON lines. A press that raises, or a worker that dies, is a failed cell, never a crashed sweep.
"""

from __future__ import annotations

from pathlib import Path

from tokensieve import models
from tokensieve.bench import metrics
from tokensieve.bench.cost import Shape, attention_flops
from tokensieve.bench.peers.venv import JsonLinesWorker, PeerFailed, PeerVenv  # noqa: F401 (PeerFailed re-exported)
from tokensieve.bench.peers.workers.kvpress_worker import PRESSES
from tokensieve.errors import TokensieveError

PREFIX = "kvpress:"
DEFAULT_PRESSES = ("streaming_llm", "snapkv", "expected_attention", "tova", "knorm", "lagkv", "pyramidkv")


def is_peer(method: str) -> bool:
    return method.startswith(PREFIX)


def press_name(method: str) -> str:
    name = method[len(PREFIX):]
    if name not in PRESSES:
        raise TokensieveError(f"unknown kvpress press '{name}': choose from {', '.join(sorted(PRESSES))}")
    return name


VENV = PeerVenv("kvpress", "kvpress-venv", "TOKENSIEVE_PEERS_VENV", (("kvpress",),))
venv_dir, venv_python, available, setup = VENV.dir, VENV.python, VENV.available, VENV.setup


class Worker(JsonLinesWorker):
    """One long-lived kvpress worker per model; restarted after a crash."""

    def __init__(self, model: str) -> None:
        super().__init__("kvpress", VENV, Path(__file__).parent / "workers" / "kvpress_worker.py")
        self.model = model
        self.versions = self.call({"op": "load", "model_dir": str(models.resolve(model))})


_WORKERS: dict[str, Worker] = {}


def worker(model: str) -> Worker:
    current = _WORKERS.get(model)
    if current is None or not current.alive():
        _WORKERS[model] = Worker(model)
    return _WORKERS[model]


def close_all() -> None:
    for w in _WORKERS.values():
        w.close()
    _WORKERS.clear()


def run_peer(model: str, case: dict, method: str, budget: float, repeats: int) -> tuple[float | None, dict]:
    """One cell with a kvpress press; raises PeerFailed for a failed cell."""
    from tokensieve.bench import tasks
    from tokensieve.models import cached_load

    press = press_name(method)
    net, tok = cached_load(model)
    w = worker(model)
    per_token = _kv_bytes_per_token(net.config)
    if case["task"] == "needle":
        needle, ctx, question = tasks.needle_prompt(model, case["tokens"], case["depth"], case["needle"])
        eos = [net.generation_config.eos_token_id, tok.eos_token_id]
        out = w.call({"op": "needle", "press": press, "budget": budget, "context": ctx, "question": question,
                      "max_new_tokens": tasks.NEEDLE_NEW_TOKENS, "stop": list(tasks.newline_ids(model)),
                      "eos": [e for e in eos if isinstance(e, int)], "repeats": repeats})
        answer = tok.decode([t for t in out.pop("tokens") if t not in eos], skip_special_tokens=True).strip()
        prompt = len(ctx) + len(question)
        out |= {"answer": answer, "expected": needle.expected, "prompt_tokens": prompt,
                "kv_bytes_full": per_token * prompt, "peer": w.versions}
        out["attention_flops"] = attention_flops(Shape.of(net.config), prompt, out["kept_tokens"],
                                                 tasks.NEEDLE_NEW_TOKENS)
        return metrics.contains(answer, needle.expected), out
    if case["task"] == "fidelity":
        ctx, cont = tasks.fidelity_ids(model, case)
        out = w.call({"op": "fidelity", "press": press, "budget": budget, "context": ctx[0].tolist(),
                      "continuation": cont[0].tolist()})
        out |= {"kv_bytes_full": per_token * ctx.shape[1], "peer": w.versions,
                "attention_flops": attention_flops(Shape.of(net.config), case["tokens"], out["kept_tokens"],
                                                   case["continuation"])}
        return out["top1"], out
    if case["task"] in tasks.PROMPT_TASKS:
        return _run_prompt_peer(model, case, press, budget, repeats, w)
    raise PeerFailed(f"kvpress presses compress once after prefill; the {case['task']} task is not supported")


def _run_prompt_peer(model: str, case: dict, press: str, budget: float, repeats: int, w: Worker):
    """A RULER or code case through the press: the same prompt ids, greedy decoding, the same scoring. The worker
    stops at a newline for single-line answers; code decodes its whole budget and is truncated like ours."""
    from tokensieve.bench import prompts, tasks
    from tokensieve.models import cached_load

    net, tok = cached_load(model)
    task = prompts.prompt_task(model, tuple(sorted(case.items())))
    ctx, question = prompts.prompt_ids(model, task)
    eos = [e for e in (net.generation_config.eos_token_id, tok.eos_token_id) if isinstance(e, int)]
    out = w.call({"op": "needle", "press": press, "budget": budget, "context": ctx, "question": question,
                  "max_new_tokens": task.max_new_tokens, "eos": eos, "repeats": repeats,
                  "stop": list(tasks.newline_ids(model)) if task.stop_at_newline else []})
    answer = tok.decode([t for t in out.pop("tokens") if t not in eos], skip_special_tokens=True)
    answer = answer if task.plain else answer.strip()  # code keeps its indentation
    quality, detail = task.score(answer)
    prompt = len(ctx) + len(question)
    out |= {"answer": answer, **detail, "expected": list(task.expected), "prompt_tokens": prompt,
            "kv_bytes_full": _kv_bytes_per_token(net.config) * prompt, "peer": w.versions}
    out["attention_flops"] = attention_flops(Shape.of(net.config), prompt, out["kept_tokens"], task.max_new_tokens)
    return quality, out


def _kv_bytes_per_token(config) -> int:
    text = config.get_text_config()
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    return 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * 4  # float32 keys + values
