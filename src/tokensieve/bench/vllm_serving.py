"""`tokensieve bench serve --engine vllm`: the same trace through the real vLLM server, stock and with the plugin.

- **batch**: `batch` distinct essay prompts sent at once into a pool with room for all of them at full cache, each
  streaming `new` tokens (EOS ignored). Throughput at
  full batch is the client's: tokens received while every request was decoding (from the last first token to the
  first finish), over that window. TTFT is each request's own; the KV usage peak is vLLM's own gauge, polled.
- **capacity**: in a fixed pool of paged blocks (room for `pool_requests` full requests), how many of `requests`
  sent at once vLLM runs together.
`full` is vLLM as shipped (no plugin, stock scheduler); a policy runs through the plugin with `vllm_xargs`."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time

import openai

from tokensieve.bench.peers import vllm_engine
from tokensieve.bench.serving import Method, prompts_for
from tokensieve.errors import TokensieveError
from tokensieve.vllm.plan import POLICIES, SELECTORS, plan, step_pages

BLOCK = 128  # vLLM's CPU block size


def check(methods: list[Method]) -> None:
    for method in methods:
        if method.policy != "full" and method.policy not in POLICIES or method.kv_dtype != "fp":
            raise TokensieveError(f"--engine vllm runs full or {', '.join(POLICIES)} (fp KV); not {method.label}")


def kept_share(method: Method, rows: list[list[int]], block: int) -> float:
    """The share of the prompts' tokens a method keeps after prefill: its budget rounded down to whole blocks (a
    selector keeps them all)."""
    if method.policy == "full" or method.policy in SELECTORS:
        return 1.0
    holes = [plan(len(ids), method.budget, block) for ids in rows]
    kept = sum(hole.kept_tokens if hole else len(ids) for hole, ids in zip(holes, rows, strict=True))
    return round(kept / sum(len(ids) for ids in rows), 4)


def attended_share(method: Method, rows: list[list[int]], block: int) -> float:
    """The share of the cached tokens a method attends at the first decode step: what it keeps, or for a selector
    its budget rounded down to whole pages (`core.pages.span`)."""
    if method.policy not in SELECTORS:
        return kept_share(method, rows, block)
    steps = [step_pages(len(ids) + 1, method.budget, block) for ids in rows]
    attended = sum(len(ids) + 1 if s is None else s.attended_tokens for s, ids in zip(steps, rows, strict=True))
    return round(attended / sum(len(ids) + 1 for ids in rows), 4)


def _prompts(model: str, methods: list[Method], prompt_tokens: int, count: int, new: int,
             block: int) -> tuple[list[list[int]], int]:
    """`count` distinct prompts' token ids, and the blocks one request needs at full cache."""
    from tokensieve.models import cached_load

    check(methods)
    _, tokenizer = cached_load(model)
    rows = [tokenizer(p).input_ids for p in prompts_for(tokenizer, prompt_tokens, count)]
    return rows, -(-(max(len(r) for r in rows) + new) // block)


def _server(model: str, method: Method, blocks: int, per_request: int, block: int):
    """vLLM as shipped for `full`, with the plugin otherwise, in a pool of `blocks` paged blocks."""
    return vllm_engine.server(model, plugin=method.policy != "full", blocks=blocks,
                              max_model_len=per_request * block, args=("--block-size", str(block)))


def _xargs(method: Method) -> dict | None:
    if method.policy == "full":
        return None
    return {"vllm_xargs": {"tokensieve_policy": method.policy, "tokensieve_budget": method.budget}}


class Poller:
    """Polls one of vLLM's gauges every `every` seconds in a thread: (perf_counter, value) samples."""

    def __init__(self, url: str, name: str, every: float = 0.1) -> None:
        self.url, self.name, self.every = url, name, every
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.perf_counter(), vllm_engine.metric(self.url, self.name)))
            self.stop.wait(self.every)

    @property
    def peak(self) -> float:
        return max((v for _, v in self.samples), default=0.0)

    def median_between(self, start: float, end: float) -> float | None:
        inside = [v for t, v in self.samples if start <= t <= end]
        return statistics.median(inside) if inside else None

    def __enter__(self) -> Poller:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


async def _stream(client, model: str, ids: list[int], new: int, extra: dict | None, start: float) -> list[float]:
    """Seconds since `start` at which each streamed token arrived."""
    stamps = []
    stream = await client.completions.create(model=model, prompt=ids, max_tokens=new, temperature=0, stream=True,
                                             extra_body={**(extra or {}), "ignore_eos": True})
    async for _ in stream:
        stamps.append(time.perf_counter() - start)
    return stamps


async def _trace(url: str, model: str, rows: list[list[int]], new: int, extra: dict | None,
                 start: float) -> list[list[float]]:
    async with openai.AsyncOpenAI(base_url=url, api_key="none", timeout=3600) as client:
        return await asyncio.gather(*(_stream(client, model, ids, new, extra, start) for ids in rows))


def decode_at_batch(model: str, methods: list[Method], batch: int, prompt_tokens: int, new: int,
                    progress=print, block: int = BLOCK) -> list[dict]:
    rows, per_request = _prompts(model, methods, prompt_tokens, batch, new, block)
    blocks = batch * per_request + 1  # room for the whole batch at full cache (vLLM keeps one null block)
    results = []
    for method in methods:
        with (_server(model, method, blocks, per_request, block) as url,
              Poller(url, "vllm:kv_cache_usage_perc") as usage):
            start = time.perf_counter()
            stamps = asyncio.run(_trace(url, model, rows, new, _xargs(method), start))
        firsts, finishes = [s[0] for s in stamps], [s[-1] for s in stamps]
        opened, closed = max(firsts), min(finishes)
        in_window = sum(sum(1 for t in s if opened < t <= closed) for s in stamps)
        results.append({"engine": "vllm", "method": method.label, "batch": batch, "block_size": block,
                        "kept_share": kept_share(method, rows, block),
                        "attended_share": attended_share(method, rows, block), "pool_blocks": blocks,
                        "full_batch_tok_s": round(in_window / (closed - opened), 2) if closed > opened else None,
                        "window_s": round(closed - opened, 1), "last_first_token_s": round(opened, 1),
                        "ttft_p50_s": round(statistics.median(firsts), 1), "wall_s": round(max(finishes), 1),
                        "peak_kv_usage": round(usage.peak, 4),  # prefill holds whole prompts, compacted or not
                        "kv_usage_at_full_batch": _rounded(usage.median_between(start + opened, start + closed))})
        progress(results[-1])
    full = next((r for r in results if r["method"] == "full"), None)
    for row in results:
        if full and full["full_batch_tok_s"] and row["full_batch_tok_s"]:
            row["vs_full"] = round(row["full_batch_tok_s"] / full["full_batch_tok_s"], 2)
    return results


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def served_at_once(model: str, methods: list[Method], prompt_tokens: int, new: int, requests: int,
                   pool_requests: int = 2, progress=print, block: int = BLOCK) -> list[dict]:
    """Peak running requests in a pool with room for `pool_requests` full-cache requests
    (`--num-gpu-blocks-override`), `requests` sent at once."""
    rows, per_request = _prompts(model, methods, prompt_tokens, requests, new, block)
    blocks = pool_requests * per_request + 1  # vLLM keeps one null block
    results = []
    for method in methods:
        with (_server(model, method, blocks, per_request, block) as url,
              Poller(url, "vllm:num_requests_running", every=0.05) as running):
            asyncio.run(_trace(url, model, rows, new, _xargs(method), time.perf_counter()))
        results.append({"engine": "vllm", "method": method.label, "block_size": block,
                        "kept_share": kept_share(method, rows, block), "pool_blocks": blocks,
                        "requests": requests, "peak_running": int(running.peak)})
        progress(results[-1])
    return results
