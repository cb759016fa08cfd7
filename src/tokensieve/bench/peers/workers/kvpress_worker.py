"""A kvpress worker: runs inside its own venv (kvpress pins an older transformers) and speaks JSON lines.

Standalone on purpose (imports only torch, transformers and kvpress). One request per stdin line, one answer
per stdout line: {"op": "load", "model_dir": ...}, {"op": "needle", ...}, {"op": "fidelity", ...},
{"op": "quit"}. The press is a context manager around our own forward on the token ids we are sent, so the
prompt is exactly the one tokensieve's methods see; decoding is our own greedy loop outside the press.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import traceback

PRESSES = {
    "streaming_llm": "StreamingLLMPress", "snapkv": "SnapKVPress", "expected_attention": "ExpectedAttentionPress",
    "tova": "TOVAPress", "knorm": "KnormPress", "lagkv": "LagKVPress", "pyramidkv": "PyramidKVPress",
    "observed_attention": "ObservedAttentionPress", "random": "RandomPress", "qfilter": "QFilterPress",
    "kvzip": "KVzipPress",
}
STATE: dict = {}


def _peak_reset() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def load(model_dir: str) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_grad_enabled(False)
    attn = os.environ.get("TOKENSIEVE_PEER_ATTN", "sdpa")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation=attn).eval()
    STATE["model"] = model
    model(input_ids=torch.arange(1, 65)[None])  # warm-up: no cell pays first-call costs
    from importlib.metadata import version

    import kvpress

    del kvpress
    import transformers

    return {"kvpress": version("kvpress"), "transformers": transformers.__version__, "torch": torch.__version__}


def make_press(name: str, budget: float):
    import kvpress

    if name not in PRESSES:
        raise ValueError(f"unknown kvpress press '{name}': choose from {', '.join(sorted(PRESSES))}")
    cls = getattr(kvpress, PRESSES[name])
    if name == "observed_attention":
        STATE["model"].set_attn_implementation("eager")
    return cls(compression_ratio=round(1.0 - budget, 6))


def _kv_bytes(cache) -> tuple[int, list[int]]:
    total, kept = 0, []
    for layer in cache.layers:
        total += layer.keys.numel() * layer.keys.element_size() + layer.values.numel() * layer.values.element_size()
        kept.append(int(layer.keys.shape[-2]))
    return total, kept


def _prefill(ids, press_name: str, budget: float):
    import torch
    from transformers import DynamicCache

    model = STATE["model"]
    cache = DynamicCache(config=model.config)
    press = make_press(press_name, budget)
    start = time.perf_counter()
    with press(model):
        out = model(input_ids=torch.tensor([ids]), past_key_values=cache, use_cache=True)
    return out.logits[:, -1, :], cache, time.perf_counter() - start


def needle(req: dict) -> dict:
    import torch

    model = STATE["model"]
    ids = req["context"] + req["question"]
    stop, eos = set(req.get("stop", [])), set(req.get("eos", []))
    runs = []
    for _ in range(max(1, req.get("repeats", 1))):
        _peak_reset()
        logits, cache, prefill_s = _prefill(ids, req["press"], req["budget"])
        kv, kept = _kv_bytes(cache)
        generated, start = [], time.perf_counter()
        for step in range(req["max_new_tokens"]):
            token = int(logits.argmax(-1)[0])
            generated.append(token)
            if token in eos or token in stop or step == req["max_new_tokens"] - 1:
                break
            pos = torch.tensor([[len(ids) + step]])
            out = model(input_ids=torch.tensor([[token]]), past_key_values=cache, use_cache=True,
                        position_ids=pos)
            logits = out.logits[:, -1, :]
        decode_s = time.perf_counter() - start
        steps = max(len(generated) - 1, 0)
        runs.append({"tokens": generated, "prefill_s": prefill_s,
                     "decode_tok_s": steps / decode_s if steps and decode_s else 0.0,
                     "kv_bytes_kept": kv, "kept_tokens": kept, "peak_rss_mb": _peak_mb()})
    first = dict(runs[0])
    first["prefill_s_all"] = [r["prefill_s"] for r in runs]
    first["decode_tok_s_all"] = [r["decode_tok_s"] for r in runs]
    first["prefill_s"] = statistics.median(first["prefill_s_all"])
    first["decode_tok_s"] = statistics.median(first["decode_tok_s_all"])
    return first


def _continuation_logits(ctx, cont, press_name: str, budget: float):
    import torch

    model = STATE["model"]
    last, cache, prefill_s = _prefill(ctx, press_name, budget)
    kv, kept = _kv_bytes(cache)
    pos = torch.arange(len(ctx), len(ctx) + len(cont) - 1)[None]
    out = model(input_ids=torch.tensor([cont[:-1]]), past_key_values=cache, use_cache=True,
                position_ids=pos)
    return torch.cat([last[:, None], out.logits], 1)[0].float(), kv, kept, prefill_s


def fidelity(req: dict) -> dict:
    import torch

    ctx, cont = req["context"], req["continuation"]
    _peak_reset()
    logits, kv, kept, prefill_s = _continuation_logits(ctx, cont, req["press"], req["budget"])
    peak = _peak_mb()
    if "reference" not in STATE or STATE["reference"][0] != (tuple(ctx), tuple(cont)):
        ref = _continuation_logits(ctx, cont, "streaming_llm", 1.0)[0]
        STATE["reference"] = ((tuple(ctx), tuple(cont)), ref)
    ref = STATE["reference"][1]
    target = torch.tensor(cont)
    logp, logq = torch.log_softmax(ref, -1), torch.log_softmax(logits, -1)
    kl = (logp.exp() * (logp - logq)).sum(-1)
    nll_ref = -logp.gather(1, target[:, None]).mean()
    nll = -logq.gather(1, target[:, None]).mean()
    return {"kl": float(kl.mean()), "top1": float((ref.argmax(-1) == logits.argmax(-1)).float().mean()),
            "ppl": float(nll.exp()), "ppl_full": float(nll_ref.exp()), "ppl_ratio": float((nll - nll_ref).exp()),
            "prefill_s": prefill_s, "kv_bytes_kept": kv, "kept_tokens": kept, "peak_rss_mb": peak}


def main() -> None:
    handlers = {"load": lambda r: load(r["model_dir"]), "needle": needle, "fidelity": fidelity}
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # library chatter must not corrupt the protocol
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("op") == "quit":
            break
        try:
            answer = {"ok": True, **handlers[req["op"]](req)}
        except Exception as err:  # a press that fails is a failed cell, reported to the caller
            answer = {"ok": False, "error": f"{type(err).__name__}: {err}", "trace": traceback.format_exc()[-2000:]}
        real_stdout.write(json.dumps(answer) + "\n")
        real_stdout.flush()


if __name__ == "__main__":
    main()
