"""Peers as methods in the same grid: kvpress presses through a worker in kvpress's own venv.

kvpress pins an older transformers than ours, so it lives in `~/.cache/tokensieve/peers/kvpress-venv`
(`tokensieve peers setup` creates it: CPU torch first, then kvpress). The worker (peer_worker.py, standalone)
loads the same converted safetensors model dir and receives the exact prompt token ids our methods see; it
answers JSON lines. A press that raises, or a worker that dies, is a failed cell, never a crashed sweep.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tokensieve import models
from tokensieve.bench import metrics
from tokensieve.bench.cost import Shape, attention_flops
from tokensieve.bench.peer_worker import PRESSES
from tokensieve.errors import TokensieveError

PREFIX = "kvpress:"
DEFAULT_PRESSES = ("streaming_llm", "snapkv", "expected_attention", "tova", "knorm", "lagkv", "pyramidkv")
TORCH = "torch==2.13.0"


class PeerFailed(RuntimeError):
    """A peer could not produce this cell (the press raised, or the worker died)."""


def is_peer(method: str) -> bool:
    return method.startswith(PREFIX)


def press_name(method: str) -> str:
    name = method[len(PREFIX):]
    if name not in PRESSES:
        raise TokensieveError(f"unknown kvpress press '{name}': choose from {', '.join(sorted(PRESSES))}")
    return name


def venv_dir() -> Path:
    return Path(os.environ.get("TOKENSIEVE_PEERS_VENV") or models.cache_root() / "peers" / "kvpress-venv")


def venv_python() -> Path:
    return venv_dir() / "bin" / "python"


def available() -> bool:
    """The kvpress venv exists and has kvpress installed (checked on disk: no interpreter start-up)."""
    return venv_python().exists() and any(venv_dir().glob("lib/python*/site-packages/kvpress-*.dist-info"))


def setup(echo=print) -> float:
    """Create the kvpress venv (CPU torch first: a bare torch would pull a multi-GB CUDA build). Seconds taken."""
    start = time.perf_counter()
    target = venv_dir()
    steps = [[sys.executable, "-m", "venv", str(target)]] if not venv_python().exists() else []
    pip = [str(venv_python()), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    steps += [pip + [TORCH], pip + ["kvpress"]]
    for cmd in steps:
        echo(" ".join(cmd))
        if subprocess.run(cmd).returncode != 0:
            raise TokensieveError(f"peer setup failed at: {' '.join(cmd)}")
    return time.perf_counter() - start


class Worker:
    """One long-lived worker process per model; restarted after a crash."""

    def __init__(self, model: str) -> None:
        if not venv_python().exists():
            raise PeerFailed(f"kvpress venv not found at {venv_dir()}: run `tokensieve peers setup`")
        self.model = model
        script = Path(__file__).with_name("peer_worker.py")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
               "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        self.proc = subprocess.Popen([str(venv_python()), str(script)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self.versions = self.call({"op": "load", "model_dir": str(models.resolve(model))})

    def call(self, request: dict) -> dict:
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError) as err:
            raise PeerFailed(f"kvpress worker died: {err}") from None
        if not line:
            raise PeerFailed(f"kvpress worker died (exit code {self.proc.wait()})")
        answer = json.loads(line)
        if not answer.pop("ok"):
            raise PeerFailed(answer["error"])
        return answer

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.alive():
            try:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()


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
    from tokensieve.generation import cached_load

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
        ctx, cont = tasks._fidelity_ids(model, case)
        out = w.call({"op": "fidelity", "press": press, "budget": budget, "context": ctx[0].tolist(),
                      "continuation": cont[0].tolist()})
        out |= {"kv_bytes_full": per_token * ctx.shape[1], "peer": w.versions,
                "attention_flops": attention_flops(Shape.of(net.config), case["tokens"], out["kept_tokens"],
                                                   case["continuation"])}
        return out["top1"], out
    raise PeerFailed(f"kvpress presses compress once after prefill; the {case['task']} task is not supported")


def _kv_bytes_per_token(config) -> int:
    text = config.get_text_config()
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    return 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * 4  # float32 keys + values
