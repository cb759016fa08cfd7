"""The continuous-batching engine: requests join the running batch at step boundaries and leave when done.

Each step is one packed forward (`packed.py`): one token for every decoding sequence plus up to `prefill_chunk`
tokens of one prompt, the one with the fewest left, so a short request is not stuck behind a long one.
Every sequence has its own policy, budget, SieveCache and Session.

A prompt is prefilled in pieces. For a policy that gives the same result from a dense prefix (`branchable`:
SnapKV-style windows, key-norm scorers, every dynamic selector) all but the prompt's last `tail` tokens are fed
without eviction, and the last piece evicts with the prompt's final queries, exactly as one-piece prefill does. A
policy that is not (H2O accumulates over every prompt query, rolling positions, sparse prefill) is prefilled in
one piece. Greedy output therefore equals `tokensieve generate` on the same prompt and policy.

Memory decides the rest: in pieces, every layer holds the whole prompt until the last piece; in one piece, each
layer evicts, and a quantized store codes, right after it attends. A request whose pieces do not fit the pool's
free bytes is prefilled in one piece, which needs only its kept cache plus two layers of the prompt.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from tokensieve.core.budget import parse_budget
from tokensieve.core.cache import SieveCache
from tokensieve.core.decode_kernel import with_kernel
from tokensieve.core.hooks import dense_attention
from tokensieve.core.policy import Policy
from tokensieve.core.quant import check_kv_dtype
from tokensieve.core.session import Session
from tokensieve.errors import TokensieveError
from tokensieve.methods import make
from tokensieve.models import model_lock
from tokensieve.run import branchable
from tokensieve.serve.packed import PackedModel, Segment
from tokensieve.serve.pool import Footprint, KVPool, evicts, measured_bytes
from tokensieve.serve.sampling import Sampling, cut_at_stop, next_token, safe_prefix

log = logging.getLogger("tokensieve.serve")
TAIL = 64  # prompt tokens fed with eviction on, at the end of a prefill (>= any policy's observation window)


class RequestError(TokensieveError):
    """A request the engine refuses: `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


def servable(policy: Policy) -> None:
    """RequestError unless a packed step can run `policy` (token skipping shrinks one sequence's forward)."""
    if policy.skips_tokens:
        raise RequestError(f"{policy.name} skips prompt tokens inside the forward, which a packed step of several "
                           "sequences cannot do; use it with `tokensieve generate` or the bench")


@dataclass
class Request:
    prompt_ids: list[int]
    max_tokens: int
    policy: str = "full"
    budget: float | str = 1.0
    sampling: Sampling = field(default_factory=Sampling)
    stops: list[str] = field(default_factory=list)
    ignore_eos: bool = False  # decode all max_tokens (benchmarks: every method generates the same count)
    kv_dtype: str | None = None  # KV storage precision (None: the server's)


@dataclass
class Event:
    """What a sequence reports: `text` deltas while it runs, then one final event with `finish_reason`."""

    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    error: str | None = None
    usage: dict | None = None


@dataclass
class Sequence:
    id: int
    request: Request
    policy: Policy
    emit: Callable[[Event], None]
    arrived: float
    cache: SieveCache | None = None
    session: Session | None = None
    fed: int = 0  # prompt tokens already in the cache
    dense_until: int = 0  # prompt tokens fed without eviction (a dense prefix), then the rest with it
    one_piece: bool = False
    generated: list[int] = field(default_factory=list)
    sent: str = ""
    first_token: float | None = None
    cancelled: bool = False
    generator: torch.Generator | None = None
    kv_kept: int = 0
    kv_full: int = 0
    kv_dtype: str = "fp"

    @property
    def prompt_len(self) -> int:
        return len(self.request.prompt_ids)

    @property
    def decoding(self) -> bool:
        return self.fed >= self.prompt_len


class Engine:
    """Runs a model for many concurrent requests in its own thread (`start`), or step by step (`step`)."""

    def __init__(self, model, tokenizer=None, *, policy: str = "full", budget: float | str = 1.0,
                 max_batch: int = 16, kv_pool_bytes: int | None = None, prefill_chunk: int = 128,
                 max_queue: int = 64, metrics=None, name: str = "model", kv_dtype: str = "fp",
                 decode_kernel: bool = False, packed_gemm: bool = False) -> None:
        if max_batch < 1 or prefill_chunk < 1 or max_queue < 0:
            raise TokensieveError("max_batch and prefill_chunk must be >= 1, max_queue >= 0")
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.default_policy, self.default_budget = policy, budget
        servable(self.make_policy(policy, budget))  # a bad server default fails at start, not at a request
        self.footprint = Footprint.of(model)
        check_kv_dtype(kv_dtype, self.footprint.head_dim)
        self.kv_dtype = kv_dtype
        self.packed = PackedModel(model, packed_gemm, int8_kernel=decode_kernel)
        self.decode_kernel = decode_kernel
        self.dense = with_kernel(dense_attention(self.packed.modules[0], self.packed.dense_name), decode_kernel,
                                 model.device)
        self.pool = KVPool(kv_pool_bytes)
        self.max_batch, self.prefill_chunk, self.max_queue = max_batch, prefill_chunk, max_queue
        self.metrics = metrics
        config = model.config.get_text_config()
        self.context = getattr(config, "max_position_embeddings", None)
        eos = model.generation_config.eos_token_id if model.generation_config else None
        eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        if tokenizer is not None and tokenizer.eos_token_id is not None:
            eos.append(tokenizer.eos_token_id)
        self.eos = set(eos)
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.steps = 0
        self.step_log: list[tuple[int, int, float]] = []  # (decode tokens, prompt tokens, seconds) per step
        self._ids = itertools.count()
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.hold_decode = False  # benchmarks: prefill everything admitted before any sequence decodes

    # --- requests -------------------------------------------------------------------------------------------------
    def make_policy(self, policy: str | Policy | None, budget: float | str | None) -> Policy:
        if isinstance(policy, Policy):
            return policy
        budget = parse_budget(budget if budget is not None else self.default_budget)
        return make(policy or self.default_policy, budget=budget)

    def submit(self, request: Request, emit: Callable[[Event], None]) -> Sequence:
        """Queue a request; RequestError (400, or 429 when the queue is full) if it cannot be served."""
        try:
            policy = self.make_policy(request.policy, request.budget)
            kv_dtype = request.kv_dtype or self.kv_dtype
            check_kv_dtype(kv_dtype, self.footprint.head_dim)
        except TokensieveError as error:
            raise RequestError(str(error)) from None
        servable(policy)
        n, m = len(request.prompt_ids), request.max_tokens
        if n == 0:
            raise RequestError("the prompt is empty")
        if m < 1:
            raise RequestError(f"max_tokens must be at least 1, got {m}")
        if self.context and n + m > self.context:
            raise RequestError(f"this model's maximum context length is {self.context} tokens; the request has "
                               f"{n} prompt tokens + {m} max_tokens")
        peak = self.footprint.prefill_bytes(n, m, policy, whole=True, kv_dtype=kv_dtype)
        if not self.pool.could_ever_fit(peak):
            raise RequestError(f"the request needs {peak / 2**20:.1f} MiB of KV cache under {policy.name}; the "
                               f"server's KV pool holds {self.pool.capacity / 2**20:.1f} MiB")
        with self._lock:
            # a full queue turns the request away even if it would fit now: the ones waiting go first
            if len(self.waiting) >= self.max_queue and (self.waiting or not self._admissible(peak)):
                raise RequestError("the server is at capacity; retry later", status=429, retry_after=1.0)
            seq = Sequence(next(self._ids), request, policy, emit, time.perf_counter(), kv_dtype=kv_dtype)
            seq.generator = request.sampling.generator(self.model.device)
            self.waiting.append(seq)
            self._occupancy()
            self._lock.notify_all()
        return seq

    def cancel(self, seq: Sequence) -> None:
        """Stop a sequence (its client left): it leaves the batch and frees its memory before the next step."""
        with self._lock:
            seq.cancelled = True
            if seq in self.waiting:
                self.waiting.remove(seq)
                self._occupancy()
            self._lock.notify_all()

    # --- the loop -------------------------------------------------------------------------------------------------
    def start(self) -> Engine:
        self._thread = threading.Thread(target=self._loop, name="tokensieve-engine", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._stopping and not self.waiting and not self.running:
                    self._lock.wait()
                if self._stopping:
                    return
            try:
                self.step()
            except Exception as error:  # one bad step fails its sequences, never the server
                log.exception("engine step failed")
                for seq in list(self.running):
                    self._finish(seq, None, error=f"internal error: {error}")

    def run_until_idle(self) -> None:
        """Step until every submitted request is done (tests and offline use, without the thread)."""
        while self.waiting or self.running:
            self.step()

    @property
    def busy(self) -> int:
        return len(self.running)

    def _admissible(self, peak: int) -> bool:
        return len(self.running) < self.max_batch and self.pool.fits(peak)

    def admit(self) -> None:
        """Admit waiting requests in order while each fits the batch and the KV pool (and drop cancelled ones)."""
        with self._lock:
            for seq in [s for s in self.running if s.cancelled]:
                self._finish(seq, "cancelled")
            while self.waiting:
                seq = self.waiting[0]
                n, m = seq.prompt_len, seq.request.max_tokens
                tail = max(TAIL, seq.policy.prompt_window())
                seq.one_piece = branchable(seq.policy, tail) is not None
                peak = self.footprint.prefill_bytes(n, m, seq.policy, whole=seq.one_piece, kv_dtype=seq.kv_dtype)
                if not seq.one_piece and not self._admissible(peak):  # pieces do not fit: one piece may
                    seq.one_piece = True
                    peak = self.footprint.prefill_bytes(n, m, seq.policy, whole=True, kv_dtype=seq.kv_dtype)
                if not self._admissible(peak):
                    break
                self.waiting.popleft()
                self.pool.reserve(seq.id, peak)
                seq.dense_until = 0 if seq.one_piece else max(0, n - tail)
                self._open(seq)
                self.running.append(seq)

    def _open(self, seq: Sequence) -> None:
        n, m = seq.prompt_len, seq.request.max_tokens
        seq.cache = SieveCache(self.model.config, reserve=n if evicts(seq.policy) else n + m, kv_dtype=seq.kv_dtype)
        session = Session.open(seq.policy, self.model, self.dense, prompt_tokens=n)
        session.decode_room, session.kernels = m, self.decode_kernel
        session.code_when_attended = seq.one_piece  # its layers code their prompt as they go (`prefill_bytes`)
        session.bind(seq.cache)
        seq.session = session

    def _plan(self) -> list[tuple[Sequence, list[int]]]:
        """This step's work: every decoding sequence's last token, plus one piece of the prefilling prompt with the
        fewest tokens left. One prompt per step keeps each step short, so a request that arrives during a long
        prefill waits at most one piece before its own prompt goes in."""
        plan = [] if self.hold_decode else [(seq, [seq.generated[-1]]) for seq in self.running if seq.decoding]
        prefilling = [s for s in self.running if not s.decoding]
        if prefilling:
            seq = min(prefilling, key=lambda s: (s.prompt_len - s.fed, s.id))
            if seq.one_piece or seq.fed >= seq.dense_until:
                end = seq.prompt_len  # the evicting piece (or a whole prompt) is never split
            else:
                end = min(seq.dense_until, seq.fed + self.prefill_chunk)
            plan.append((seq, seq.request.prompt_ids[seq.fed:end]))
        return plan

    def step(self) -> None:
        self.admit()
        plan = self._plan()
        if not plan:
            return
        segments = []
        for seq, ids in plan:
            seq.session.compress = seq.decoding or seq.fed + len(ids) > seq.dense_until
            segments.append(Segment(seq.cache, seq.session, len(ids)))
        started = time.perf_counter()
        with model_lock(self.model):
            logits = self.packed.forward([ids for _, ids in plan], segments)
        decoding = sum(seq.decoding for seq, _ in plan)
        prompt = sum(len(ids) for s, ids in plan if not s.decoding)
        self.steps += 1
        for row, (seq, ids) in enumerate(plan):
            was_decoding = seq.decoding
            if not was_decoding:
                seq.fed += len(ids)
                if not seq.decoding:
                    continue
                self._prefilled(seq)
            try:
                token = next_token(logits[row], seq.request.sampling, seq.generator)
            except Exception as error:  # a request's sampling that fails fails that request alone
                log.exception("sampling failed")
                self._finish(seq, None, error=f"internal error: {error}")
                continue
            self._emit_token(seq, token)
        self.step_log.append((decoding, prompt, time.perf_counter() - started))  # forward, sampling, streaming
        del self.step_log[:-100_000]
        if self.metrics is not None:
            self.metrics.step(batch=len(plan), running=len(self.running), queued=len(self.waiting),
                              kv_bytes=self.pool.in_use)

    def _prefilled(self, seq: Sequence) -> None:
        """The prompt is in: its reservation drops to what the sequence now keeps."""
        n, m = seq.prompt_len, seq.request.max_tokens
        seq.session.code_when_attended = False  # decode steps code their rows in `update`, as `generate`'s do
        seq.cache.compact()  # a quantized store codes the prompt's cold rows now (pieces: all of them here)
        seq.kv_full = seq.cache.full_kv_bytes()
        seq.kv_kept = measured_bytes(seq.cache, seq.session)
        estimate = self.footprint.decode_bytes(n, m, seq.policy, kv_dtype=seq.kv_dtype)
        with self._lock:
            self.pool.reserve(seq.id, max(estimate, seq.kv_kept))
        seq.first_token = time.perf_counter()

    def _emit_token(self, seq: Sequence, token: int) -> None:
        seq.generated.append(token)
        stops = seq.request.stops
        finish = None
        if token in self.eos and not seq.request.ignore_eos:
            finish = "stop"
        text = self._text(seq)
        if stops:
            text, hit = cut_at_stop(text, stops)
            finish = "stop" if hit else finish
        if finish is None and len(seq.generated) >= seq.request.max_tokens:
            finish = "length"
        ready = text if finish else safe_prefix(text, stops)
        delta = ready[len(seq.sent):] if len(ready) > len(seq.sent) else ""
        seq.sent += delta
        seq.emit(Event(text=delta, token_ids=[token]))
        if finish:
            self._finish(seq, finish)

    def _text(self, seq: Sequence) -> str:
        if self.tokenizer is None:
            return ""
        ids = [t for t in seq.generated if t not in self.eos]
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _finish(self, seq: Sequence, reason: str | None, error: str | None = None) -> None:
        with self._lock:
            if seq in self.running:
                self.running.remove(seq)
            self.pool.release(seq.id)
            self._occupancy()
        usage = self.usage(seq)
        if seq.session is not None:
            seq.session.close()
        seq.cache = seq.session = None  # the cache's buffers are freed here
        seq.emit(Event(finish_reason=reason, error=error, usage=usage))

    def _occupancy(self) -> None:
        if self.metrics is not None:
            self.metrics.occupancy(len(self.running), len(self.waiting), self.pool.in_use)

    def usage(self, seq: Sequence) -> dict:
        completion = len([t for t in seq.generated if t not in self.eos])
        session = seq.session
        now = time.perf_counter()
        return {
            "prompt_tokens": seq.prompt_len, "completion_tokens": completion,
            "total_tokens": seq.prompt_len + completion,
            "tokensieve": {
                "policy": seq.policy.name, "budget": seq.policy.budget.value, "kv_dtype": seq.kv_dtype,
                "kv_bytes_full": seq.kv_full, "kv_bytes_kept": seq.kv_kept,
                "evictions": session.evictions if session else 0,
                "attended_tokens": session.usage.attended_summary() if session else {},
                "dense_fallbacks": session.usage.dense_fallbacks if session else 0,
                "ttft_s": round(seq.first_token - seq.arrived, 4) if seq.first_token else None,
                "latency_s": round(now - seq.arrived, 4),
            },
        }
