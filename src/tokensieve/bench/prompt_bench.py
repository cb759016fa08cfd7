"""Prompt compression side by side with LLMLingua (arXiv 2310.05736) on the same prompts, ratios and scorer.

Needle: a fact planted in Paul Graham essays (data/needle.py); the context is compressed with the completion
prompt's question as the protected part, then the *full* model answers greedily from the compressed context;
a hit = the expected answer is in the answer. Fidelity: the full model reads a real essay continuation
teacher-forced after the compressed vs the original context; KL(original || compressed) and top-1 agreement
of its next-token distributions. LLMLingua runs in its own venv (bench/peers/llmlingua.py) on the same scorer
weights and is given the same context-token target; a peer failure is a failed row, never a crashed run.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from tokensieve.errors import TokensieveError

PEER = "llmlingua"
NEEDLE_NEW_TOKENS = 12
CONTINUATION = 64


@dataclass
class Row:
    task: str
    method: str
    ratio: float
    tokens: int  # requested context length
    case: str
    score: float | None  # needle hit (0/1) or fidelity top-1 agreement; None = failed
    kl: float | None = None
    achieved: float | None = None  # (compressed context + question) / (context + question), target tokenizer
    seconds: float | None = None  # compression time
    answer: str = ""
    error: str = ""


@dataclass
class Summary:
    method: str
    ratio: float
    needle: float | None
    needle_cases: int
    top1: float | None
    kl: float | None
    achieved: float | None
    seconds: float | None  # mean compression time per prompt
    failed: int
    speed_vs_peer: float | None = None  # our time / llmlingua's on the same prompts


@dataclass
class Report:
    command: str
    model: str
    threads: int
    peer: dict = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    summary: list[Summary] = field(default_factory=list)


def parse_method(method: str) -> tuple[str, str]:
    """'surprisal' -> (surprisal, bfloat16); 'surprisal:float32' -> (surprisal, float32); 'llmlingua'."""
    from tokensieve.prompt.api import METHODS, PRECISIONS

    name, _, precision = method.partition(":")
    if name == PEER:
        return name, "float32"
    if name not in METHODS:
        raise TokensieveError(f"unknown method '{name}': choose from {', '.join((*METHODS, PEER))}")
    precision = precision or "bfloat16"
    if precision not in PRECISIONS:
        raise TokensieveError(f"unknown precision '{precision}' in '{method}': use {' or '.join(PRECISIONS)}")
    return name, precision


class Compressor:
    """Ours in-process, llmlingua through its worker; both return (text, seconds) for a context-token target."""

    def __init__(self, model: str, threads: int) -> None:
        self.model, self.threads, self.worker, self.peer_error = model, threads, None, ""

    def peer(self):
        from tokensieve.bench.peers import llmlingua

        if self.worker is None or self.worker.proc.poll() is not None:
            self.worker = llmlingua.Worker(self.model, threads=self.threads)
        return self.worker

    def __call__(self, method: str, context: str, question: str, ratio: float) -> tuple[str, float, int]:
        from tokensieve.prompt import compress
        from tokensieve.prompt.api import target_tokens
        from tokensieve.prompt.units import count

        name, precision = parse_method(method)
        if name != PEER:
            out = compress(context, question=question, ratio=ratio, method=name, model=self.model,
                           precision=precision)
            return out.compressed, out.seconds, out.tokens_in
        from tokensieve.models import cached_load

        _, tok = cached_load(self.model)
        n_q = count(tok, question)
        total_in = count(tok, context) + n_q
        keep = target_tokens(total_in, ratio, None) - n_q
        answer = self.peer().compress(context, keep)
        return answer["compressed"], answer["seconds"], total_in

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()


def _needle_row(run: Compressor, method: str, ratio: float, tokens: int, depth: float, needle: int) -> Row:
    from tokensieve.data.needle import needle_case
    from tokensieve.models import cached_load
    from tokensieve.prompt.units import count
    from tokensieve.run import completion_prompt, generate

    _, tok = cached_load(run.model)
    case = needle_case(tok, tokens, depth, needle)
    context, question = completion_prompt(case.context, case.question, case.answer_prefix)
    row = Row("needle", method, ratio, tokens, f"d{depth:g}/n{needle}", None)
    if ratio < 1:
        text, row.seconds, total_in = run(method, context, question, ratio)
        row.achieved = round((count(tok, text) + count(tok, question)) / total_in, 4)
    else:
        text, row.seconds, row.achieved = context, 0.0, 1.0
    result = generate(run.model, text, case.question, "full", 1.0, answer_prefix=case.answer_prefix,
                      max_new_tokens=NEEDLE_NEW_TOKENS, stop_at_newline=True)
    row.answer, row.score = result.answer, float(case.expected in result.answer)
    return row


def _continuation_logits(net, tok, context: str, cont: torch.Tensor) -> torch.Tensor:
    ctx = tok(context, add_special_tokens=False, return_tensors="pt").input_ids
    with torch.inference_mode():
        logits = net(input_ids=torch.cat([ctx, cont[None]], 1), logits_to_keep=cont.shape[0] + 1).logits[0]
    return logits[:-1]


def _fidelity_row(run: Compressor, method: str, ratio: float, tokens: int, text_index: int) -> Row:
    from tokensieve.bench.metrics import fidelity
    from tokensieve.data.corpus import haystack
    from tokensieve.models import cached_load
    from tokensieve.prompt.units import count

    net, tok = cached_load(run.model)
    ids = tok(haystack(tok, tokens + CONTINUATION, offset=7 * text_index), add_special_tokens=False).input_ids
    context, cont = tok.decode(ids[:tokens]), torch.tensor(ids[tokens:tokens + CONTINUATION])
    row = Row("fidelity", method, ratio, tokens, f"text{text_index}", None)
    if ratio < 1:
        text, row.seconds, total_in = run(method, context, "", ratio)
        row.achieved = round(count(tok, text) / total_in, 4)
    else:
        text, row.seconds, row.achieved = context, 0.0, 1.0
    reference = _continuation_logits(net, tok, context, cont)
    metrics = fidelity(reference, _continuation_logits(net, tok, text, cont), cont)
    row.score, row.kl = round(metrics["top1"], 4), round(metrics["kl"], 4)
    return row


def run_bench(model: str, methods: list[str], ratios: list[float], lengths: list[int], depths: list[float],
              needles: list[int], texts: int, threads: int, command: str,
              on_row: Callable[[Row], None] | None = None) -> Report:
    from tokensieve.bench.peers.llmlingua import PeerFailed

    for m in methods:
        parse_method(m)
    if any(not 0 < r <= 1 for r in ratios):
        raise TokensieveError(f"ratios must be in (0, 1]: {ratios}")
    if any(n < 64 for n in lengths):
        raise TokensieveError(f"lengths must be at least 64 tokens: {lengths}")
    torch.set_num_threads(threads)
    report = Report(command=command, model=model, threads=threads)
    run = Compressor(model, threads)
    jobs: list[tuple] = [("needle", "full", 1.0, n, d, k) for n in lengths for d in depths for k in needles]
    jobs += [("fidelity", "full", 1.0, n, i) for n in lengths for i in range(texts)]
    jobs += [("needle", m, r, n, d, k) for r in ratios if r < 1 for n in lengths for d in depths for k in needles
             for m in methods]
    jobs += [("fidelity", m, r, n, i) for r in ratios if r < 1 for n in lengths for i in range(texts)
             for m in methods]
    try:
        for task, method, *args in jobs:
            try:
                row = (_needle_row if task == "needle" else _fidelity_row)(run, method, *args)
            except PeerFailed as err:
                row = Row(task, method, args[0], args[1], "/".join(map(str, args[2:])), None, error=str(err)[:300])
            report.rows.append(row)
            if on_row:
                on_row(row)
    finally:
        if run.worker is not None:
            report.peer = run.worker.versions
        run.close()
    report.summary = summarise(report.rows)
    return report


def summarise(rows: list[Row]) -> list[Summary]:
    def mean(values):
        values = [v for v in values if v is not None]
        return round(statistics.fmean(values), 4) if values else None

    keys = sorted({(r.method, r.ratio) for r in rows}, key=lambda k: (-k[1], k[0]))
    out = []
    for method, ratio in keys:
        mine = [r for r in rows if (r.method, r.ratio) == (method, ratio)]
        needle = [r for r in mine if r.task == "needle" and r.score is not None]
        fid = [r for r in mine if r.task == "fidelity" and r.score is not None]
        out.append(Summary(method, ratio, mean(r.score for r in needle), len(needle), mean(r.score for r in fid),
                           mean(r.kl for r in fid), mean(r.achieved for r in mine if r.score is not None),
                           mean(r.seconds for r in mine if r.score is not None),
                           sum(r.score is None for r in mine)))
    peer = {(s.ratio): s for s in out if s.method == PEER}
    for s in out:
        p = peer.get(s.ratio)
        if s.method != PEER and p and p.seconds and s.seconds is not None and s.ratio < 1:
            s.speed_vs_peer = _paired_speed(rows, s.method, s.ratio)
    return out


def _paired_speed(rows: list[Row], method: str, ratio: float) -> float | None:
    """Total compression time of `method` / llmlingua's over the prompts both compressed."""
    def times(m):
        return {(r.task, r.tokens, r.case): r.seconds for r in rows
                if r.method == m and r.ratio == ratio and r.seconds is not None and r.score is not None}

    ours, theirs = times(method), times(PEER)
    shared = ours.keys() & theirs.keys()
    total = sum(theirs[k] for k in shared)
    return round(sum(ours[k] for k in shared) / total, 3) if shared and total else None


def markdown(report: Report) -> str:
    lines = [f"Command: `{report.command}`", "",
             f"Model (scorer and reader): {report.model}; torch threads: {report.threads}; "
             f"llmlingua peer: {json.dumps(report.peer) if report.peer else 'not run'}", "",
             "| method | ratio | needle retention | fidelity top-1 | KL(orig‖comp) | achieved ratio | "
             "compress s (mean) | time vs llmlingua | failed |",
             "|---|---|---|---|---|---|---|---|---|"]

    def f(v, spec=".3f"):
        return "–" if v is None else format(v, spec)

    for s in report.summary:
        lines.append(f"| {s.method} | {s.ratio:g} | {f(s.needle)} ({s.needle_cases}) | {f(s.top1)} | {f(s.kl)} | "
                     f"{f(s.achieved)} | {f(s.seconds, '.2f')} | {f(s.speed_vs_peer, '.2f')} | {s.failed} |")
    return "\n".join(lines) + "\n"


def write(report: Report, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = out_dir / "prompt_bench.json"
    data.write_text(json.dumps({**asdict(report)}, indent=1))
    md = out_dir / "prompt_bench.md"
    md.write_text("# Prompt compression bench (generated)\n\n" + markdown(report))
    return [data, md]
