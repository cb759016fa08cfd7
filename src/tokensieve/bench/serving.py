"""`tokensieve bench serve`: what token budgets buy a server, measured through the real HTTP server and client.

Three measurements, each for full cache and the given methods on the same request trace:
- **concurrency sweep** — c clients at once (c in 1, 4, 8, 16), each streaming one completion of a distinct
  `prompt_tokens`-token essay prompt with `new_tokens` new tokens, through the `openai` async client over loopback.
  Decode throughput is the engine's: tokens generated in steps that carried no prompt piece, over those steps'
  seconds (prefill steps are reported apart). TTFT and per-token latency are the client's, p50 and p95. Peak RSS is
  the whole process's (server and clients). The attention-free bound is the same trace with attention replaced by
  zeros (`NoAttention`, as `bench speed` measures it), run on the engine directly.
- **served at once** — at a fixed KV pool, how many `prompt_tokens` requests decode concurrently.
- **TTFT under load** — a short request's time to first token alone, and while a long prompt is being prefilled.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

import openai

from tokensieve.bench.speed import BOUND, NoAttention
from tokensieve.bench.storage import split_storage
from tokensieve.core.memory import PeakMemory
from tokensieve.data.corpus import haystack
from tokensieve.errors import TokensieveError
from tokensieve.serve.engine import Engine, Request
from tokensieve.serve.server import ServeConfig, ServerThread, build_app

KERNEL = "kernel"  # a method's suffix: its engine runs dense decode attention through `core.decode_kernel`
GEMM = "gemm"  # a method's suffix: its engine's linears of 3+ rows run through prepacked oneDNN (`core.gemm`)
SUFFIXES = (KERNEL, GEMM)  # in the order a label writes them


@dataclass
class Method:
    """`policy[@kv_dtype][:budget][+kernel][+gemm]`, e.g. "snapkv:0.125", "quest@int4:0.125", "full@int4",
    "full+kernel+gemm" (the engine attends dense decode steps through `core.decode_kernel` and multiplies its
    linears through prepacked oneDNN, `core.gemm`)."""

    policy: str
    budget: float
    kv_dtype: str = "fp"
    decode_kernel: bool = False
    packed_gemm: bool = False

    @classmethod
    def parse(cls, text: str) -> Method:
        text, *suffixes = text.strip().split("+")
        unknown = [s for s in suffixes if s not in SUFFIXES]
        if unknown or len(set(suffixes)) < len(suffixes):
            raise TokensieveError(f"'{'+'.join([text, *suffixes])}': a served method's suffixes are "
                                  f"{', '.join('+' + s for s in SUFFIXES)}, each at most once")
        name, _, budget = text.partition(":")
        policy, kv_dtype = split_storage(name)
        return cls(policy, float(budget) if budget else 1.0, kv_dtype, KERNEL in suffixes, GEMM in suffixes)

    @property
    def engine_options(self) -> bool:
        """Whether the method asks for an engine option (a suffix), which the batch part alone measures."""
        return self.decode_kernel or self.packed_gemm

    @property
    def label(self) -> str:
        label = self.policy if self.policy in ("full", BOUND) else f"{self.policy}@{self.budget:g}"
        label = label if self.kv_dtype == "fp" else f"{label}/{self.kv_dtype}"
        chosen = {KERNEL: self.decode_kernel, GEMM: self.packed_gemm}
        return "".join([label, *(f"+{s}" for s in SUFFIXES if chosen[s])])

    def options(self) -> dict:
        """The request's `tokensieve` options."""
        return {"policy": self.policy, "budget": self.budget, "kv_dtype": self.kv_dtype}


@dataclass
class TraceResult:
    method: str
    concurrency: int
    decode_tok_s: float
    prefill_s: float
    wall_s: float
    ttft_p50: float | None = None
    ttft_p95: float | None = None
    tpot_p50: float | None = None
    tpot_p95: float | None = None
    peak_rss_mb: float = 0.0
    generated: int = 0
    full_batch_tok_s: float | None = None  # decode tokens/s over the steps that decoded every request at once


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 4)


def prompts_for(tokenizer, tokens: int, count: int) -> list[str]:
    return [haystack(tokenizer, tokens, offset=7919 * i) + "\n\nSummarise the essay above:" for i in range(count)]


def _rate(steps: list[tuple[int, float]]) -> float:
    seconds = sum(s for _, s in steps)
    return sum(n for n, _ in steps) / seconds if seconds else 0.0


def _decode_rate(engine: Engine, since: int, batch: int) -> tuple[float, float, float]:
    """Since step `since`: decode tokens/s over the steps without prompt pieces, the same over those steps that
    decoded all `batch` sequences (methods whose answers end earlier are compared at the same batch), and the
    seconds of the steps with prompt pieces."""
    log = engine.step_log[since:]
    decode = [(n, s) for n, p, s in log if p == 0 and n]
    return _rate(decode), _rate([(n, s) for n, s in decode if n == batch]), sum(s for _, p, s in log if p)


async def _stream_one(client, model: str, prompt: str, new: int, method: Method) -> tuple[float, list[float], int]:
    sent = time.perf_counter()
    first, gaps, last, count = None, [], None, 0
    stream = await client.completions.create(
        model=model, prompt=prompt, max_tokens=new, temperature=0, stream=True,
        extra_body={"tokensieve": method.options()})
    async for chunk in stream:
        now = time.perf_counter()
        if chunk.choices and chunk.choices[0].text:
            count += 1
            if first is None:
                first = now - sent
            elif last is not None:
                gaps.append(now - last)
            last = now
    return first or 0.0, gaps, count


def http_trace(url: str, engine: Engine, model: str, prompts: list[str], new: int, method: Method) -> TraceResult:
    async def run():
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="bench", max_retries=0, timeout=3600) as c:
            return await asyncio.gather(*(_stream_one(c, model, p, new, method) for p in prompts))

    since = len(engine.step_log)
    start = time.perf_counter()
    with PeakMemory() as peak:
        results = asyncio.run(run())
    wall = time.perf_counter() - start
    rate, full_batch, prefill = _decode_rate(engine, since, len(prompts))
    ttfts = [r[0] for r in results]
    gaps = [g for r in results for g in r[1]]
    return TraceResult(method.label, len(prompts), round(rate, 2), round(prefill, 2), round(wall, 2),
                       percentile(ttfts, 0.5), percentile(ttfts, 0.95), percentile(gaps, 0.5),
                       percentile(gaps, 0.95), round(peak.rss_mb, 1), sum(r[2] for r in results),
                       round(full_batch, 2))


def engine_trace(engine: Engine, tokenizer, prompts: list[str], new: int) -> TraceResult:
    """The attention-free bound on the same trace, on the engine directly (no HTTP: a policy object)."""
    since = len(engine.step_log)
    start = time.perf_counter()
    for prompt in prompts:
        engine.submit(Request(tokenizer(prompt).input_ids, new, NoAttention(), 1.0), lambda event: None)
    while engine.waiting or engine.running:
        time.sleep(0.05)
    rate, full_batch, prefill = _decode_rate(engine, since, len(prompts))
    return TraceResult(BOUND, len(prompts), round(rate, 2), round(prefill, 2),
                       round(time.perf_counter() - start, 2), full_batch_tok_s=round(full_batch, 2))


def decode_at_batch(model: str, methods: list[Method], batch: int, prompt_tokens: int, new: int,
                    device: str = "cpu", progress=print) -> list[dict]:
    """Decode throughput with `batch` sequences decoding together: the trace's prompts are all prefilled first
    (one by one), then `new` - 1 decode steps run at full batch, every sequence decoding every step (EOS
    ignored), so each method is timed on the same tokens and batch. The attention-free bound runs last."""
    from tokensieve.models import cached_load

    net, tokenizer = cached_load(model, device)
    rows = [tokenizer(p).input_ids for p in prompts_for(tokenizer, prompt_tokens, batch)]
    results = []
    for method in [*methods, Method(BOUND, 1.0)]:
        engine = Engine(net, tokenizer, max_batch=batch, max_queue=batch, decode_kernel=method.decode_kernel,
                        packed_gemm=method.packed_gemm)
        policy = NoAttention() if method.policy == BOUND else method.policy
        engine.hold_decode = True
        for row in rows:
            engine.submit(Request(row, new, policy, method.budget, ignore_eos=True, kv_dtype=method.kv_dtype),
                          lambda event: None)
        while engine.waiting or any(not s.decoding for s in engine.running):
            engine.step()
        engine.hold_decode = False
        since = len(engine.step_log)
        engine.run_until_idle()
        steps = engine.step_log[since:]
        seconds = sum(s for _, _, s in steps)
        tokens = sum(n for n, _, _ in steps)
        results.append({"method": method.label, "batch": batch, "steps": len(steps),
                        "decode_tok_s": round(tokens / seconds, 2),
                        "prefill_s": round(sum(s for _, _, s in engine.step_log[:since]), 2),
                        "step_ms_median": round(1000 * statistics.median(s for _, _, s in steps), 1)})
        progress(results[-1])
    full = next((r for r in results if r["method"] == "full"), results[0])  # the first method stands in
    bound = results[-1]
    for row in results:
        row["vs_full"] = round(row["decode_tok_s"] / full["decode_tok_s"], 2)
        row["share_of_bound"] = round(row["decode_tok_s"] / bound["decode_tok_s"], 2)
    return results


def concurrency_sweep(model: str, methods: list[Method], levels: list[int], prompt_tokens: int, new: int,
                      device: str = "cpu", progress=print) -> list[TraceResult]:
    app = build_app(ServeConfig(model=model, max_batch=max(levels), device=device, max_queue=max(levels)))
    engine = app.state.engine
    tokenizer = engine.tokenizer
    results = []
    with ServerThread(app) as server:
        for level in levels:
            prompts = prompts_for(tokenizer, prompt_tokens, level)
            for method in methods:  # every method on the same trace, one after the other
                results.append(http_trace(server.url, engine, model, prompts, new, method))
                progress(results[-1])
            results.append(engine_trace(engine, tokenizer, prompts, new))
            progress(results[-1])
    engine.stop()
    return results


def served_at_once(model: str, method: Method, pool_mb: float, prompt_tokens: int, new: int, requests: int,
                   device: str = "cpu") -> dict:
    """Submit `requests` prompts to an engine with a `pool_mb` KV pool and count the sequences it holds at once:
    decoding is held, so no request finishes and frees its bytes; prompts go in until the next one does not fit.
    Admission reserves each request's bytes for all its `new` tokens, so this is the number that would decode
    together."""
    from tokensieve.models import cached_load

    net, tokenizer = cached_load(model, device)
    engine = Engine(net, tokenizer, kv_pool_bytes=int(pool_mb * 2**20), max_batch=requests, max_queue=requests)
    engine.hold_decode = True
    ids = [tokenizer(p).input_ids for p in prompts_for(tokenizer, prompt_tokens, 1)] * requests
    seqs = [engine.submit(Request(row, new, method.policy, method.budget, kv_dtype=method.kv_dtype), lambda e: None)
            for row in ids]
    while True:
        engine.admit()  # a finished prefill shrinks its reservation to the kept bytes: does the next one fit now?
        if all(s.decoding for s in engine.running):
            break  # every request admitted, or the pool is full
        engine.step()
    held = [s for s in engine.running if s.decoding]
    for seq in seqs:
        engine.cancel(seq)
    engine.hold_decode = False
    engine.run_until_idle()
    return {"method": method.label, "pool_mb": pool_mb, "served_at_once": len(held),
            "kv_mb_of_those": round(sum(s.kv_kept for s in held) / 2**20, 1)}


def ttft_under_load(model: str, method: Method, long_tokens: int, short_tokens: int, repeats: int = 3,
                    device: str = "cpu") -> dict:
    app = build_app(ServeConfig(model=model, device=device))
    engine = app.state.engine
    tokenizer = engine.tokenizer
    long_prompt = prompts_for(tokenizer, long_tokens, 1)[0]
    short_prompt = haystack(tokenizer, short_tokens, offset=50_000)
    idle, loaded = [], []

    async def short(client) -> float:
        first, _, _ = await _stream_one(client, model, short_prompt, 4, method)
        return first

    async def run():
        async with openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="bench", max_retries=0,
                                      timeout=3600) as client:
            for _ in range(repeats):
                idle.append(await short(client))
                long_task = asyncio.create_task(_stream_one(client, model, long_prompt, 4, method))
                while not any(not s.decoding and s.fed for s in engine.running):
                    await asyncio.sleep(0.01)  # the long prompt's prefill has started
                loaded.append(await short(client))
                await long_task

    with ServerThread(app) as server:
        asyncio.run(run())
    engine.stop()
    idle_s, loaded_s = statistics.median(idle), statistics.median(loaded)
    return {"method": method.label, "long_tokens": long_tokens, "short_tokens": short_tokens,
            "ttft_idle_s": round(idle_s, 3), "ttft_during_long_prefill_s": round(loaded_s, 3),
            "ratio": round(loaded_s / idle_s, 2), "repeats": repeats}


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}×" if value and base else "–"


def _fmt(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(results: dict) -> str:
    """The results file as Markdown: the sweep per concurrency (ratios to full cache in the same run, and to the
    attention-free bound), served at once at a fixed pool, and TTFT under a long prefill."""
    commands = results.get("commands") or [results.get("command", "tokensieve bench serve")]
    lines = ["Commands (each adds its rows to the same results file):", "",
             *[f"    {c}" for c in commands], "",
             f"Model {results['model']}, prompts of {results['prompt_tokens']} tokens, {results['new_tokens']} new "
             "tokens each, greedy, streamed through the `openai` client over loopback.", ""]
    sweep = results.get("sweep", [])
    if sweep:
        lines += ["| clients | method | decode tok/s | vs full | at full batch | vs full | share of the "
                  "attention-free bound | prefill s | TTFT p50 / p95 s | per-token p50 / p95 s | peak RSS MB | "
                  "prompt pieces per step |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for level in sorted({r["concurrency"] for r in sweep}):
            rows = [r for r in sweep if r["concurrency"] == level]
            full = next((r for r in rows if r["method"] == "full"), {})
            bound = next((r for r in rows if r["method"] == BOUND), {})
            for r in rows:
                share = (f"{r['decode_tok_s'] / bound['decode_tok_s']:.0%}"
                         if bound.get("decode_tok_s") and r is not bound else "–")
                lines.append(
                    f"| {level} | {r['method']} | {_fmt(r['decode_tok_s'], 1)} | "
                    f"{_ratio(r['decode_tok_s'], full.get('decode_tok_s'))} | "
                    f"{_fmt(r.get('full_batch_tok_s') or None, 1)} | "
                    f"{_ratio(r.get('full_batch_tok_s'), full.get('full_batch_tok_s'))} | {share} | "
                    f"{_fmt(r['prefill_s'], 1)} | {_fmt(r['ttft_p50'])} / {_fmt(r['ttft_p95'])} | "
                    f"{_fmt(r['tpot_p50'], 3)} / {_fmt(r['tpot_p95'], 3)} | "
                    f"{_fmt(r['peak_rss_mb'] or None, 0)} | {r.get('schedule', 'one prompt, 128 tokens')} |")
        lines.append("")
    capacity = results.get("capacity", [])
    if capacity:
        full = next((c for c in capacity if c["method"] == "full"), {})
        lines += [f"Served at once at a fixed KV pool of {capacity[0]['pool_mb']:.0f} MB:", "",
                  "| method | requests decoding at once | vs full | their kept KV MB |", "|---|---|---|---|"]
        lines += [f"| {c['method']} | {c['served_at_once']} | {_ratio(c['served_at_once'], full.get('served_at_once'))}"
                  f" | {c['kv_mb_of_those']} |" for c in capacity]
        lines.append("")
    batch = results.get("batch", [])
    if batch:
        lines += [f"Decode at full batch ({batch[0]['batch']} sequences decoding every step, prompts prefilled "
                  "first, EOS ignored so that every method decodes the same tokens):", "",
                  "| method | decode tok/s | vs full | share of the attention-free bound | median step ms |",
                  "|---|---|---|---|---|"]
        lines += [f"| {b['method']} | {b['decode_tok_s']} | {b['vs_full']:.2f}× | {b['share_of_bound']:.0%} | "
                  f"{b['step_ms_median']} |" for b in batch]
        lines.append("")
    ttft = results.get("ttft")
    if ttft:
        lines += [f"Time to first token of a {ttft['short_tokens']}-token request ({ttft['method']}, median of "
                  f"{ttft['repeats']}): {ttft['ttft_idle_s']} s idle, {ttft['ttft_during_long_prefill_s']} s while "
                  f"a {ttft['long_tokens']}-token prompt is being prefilled: **{ttft['ratio']}×**.", ""]
    return "\n".join(lines)
