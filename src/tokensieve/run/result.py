"""What one run returns: the answer, its token ids and the measured cost (`tokensieve generate --json`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Stats:
    """The JSON contract of `tokensieve generate --json` (`stats`). In a batch, timings, bytes, attended tokens
    and fallbacks are the whole batch's; token counts are the sequence's own."""

    policy: str
    budget: float
    prompt_tokens: int
    new_tokens: int
    prefill_s: float
    decode_tok_s: float  # decode steps per second (a step yields one token per sequence)
    peak_rss_mb: float
    kv_bytes_full: int  # what an unmodified cache holds after the prompt
    kv_bytes_kept: int  # what this policy's cache really allocates after the prompt (spare rows included)
    kv_bytes_end: int = 0  # what it really allocates after decode
    policy_state_bytes: int = 0  # the policy's own state after decode (a selector's summaries), on top of the cache
    kept_tokens: list[int] = field(default_factory=list)  # stored tokens per layer after the prompt
    kept_tokens_end: list[int] = field(default_factory=list)  # stored tokens per layer after decode
    attended_tokens: dict = field(default_factory=lambda: {"mean": 0.0, "max": 0})  # per decode step and layer
    dense_fallbacks: int = 0  # layer-forwards read densely although the budget was smaller
    dense_fallbacks_decode: int = 0  # of which in decode steps
    evictions: int = 0
    chunk: int | None = None
    evict_every: int = 0
    batch: int = 1
    query_aware: bool = True
    device: str = "cpu"
    peak_device_mb: float | None = None
    shared_prefill_s: float = 0.0  # of prefill_s: the dense prefix prefill this run branched from (`Prefix`)
    kv_dtype: str = "fp"  # how the cache stored keys and values (fp: the compute dtype; int8, int4: codes)


@dataclass
class Result:
    answer: str
    token_ids: list[int]
    stats: Stats

    def to_dict(self) -> dict:
        return {"answer": self.answer, "token_ids": self.token_ids, "stats": asdict(self.stats)}
