"""Quality and cost of one encoder method at one budget, measured against the plain model in the same process:
cosine to the full embeddings, retrieval recall@1 and MRR (per query, so the report can pair them with full),
throughput in sentences/s (median of repeats, model loaded beforehand), peak RSS and a FLOPs estimate."""

from __future__ import annotations

import statistics
from functools import cache

import torch

from tokensieve.core.memory import PeakMemory, now
from tokensieve.encoder.data import corpus_pairs, humaneval_pairs, passages
from tokensieve.encoder.run import block_flops, merge
from tokensieve.encoder.zoo import load_sentence_transformer

DATASETS = {"humaneval": humaneval_pairs, "corpus": corpus_pairs}


@cache
def cached_encoder(name: str, device: str = "cpu"):
    return load_sentence_transformer(name, device)


SEARCHED = "+search"  # "tome+search": the method on a schedule searched for this keep (encoder.search)


@cache
def searched_schedule(model: str, method: str, keep: float):
    """The schedule `tokensieve encode-schedule --texts 16 --steps 12` finds (essay passages of 256 tokens, not the
    retrieval pairs)."""
    from tokensieve.encoder.search import search

    st = cached_encoder(model)
    st.max_seq_length = 256
    return search(st, method, keep, passages(st.tokenizer, 256, 16), steps=12).schedule


def encode(st, texts, method: str, keep: float, batch: int, max_length: int, model: str = "minilm-l6"):
    """(embeddings [n, dim] float32 on CPU, measured kept ratio, the run)."""
    schedule = None
    if method.endswith(SEARCHED):
        method = method.removesuffix(SEARCHED)
        schedule = searched_schedule(model, method, keep) if keep < 1 else None
    st.max_seq_length = max_length
    options = {"schedule": schedule} if schedule is not None else {"keep": keep}
    with torch.inference_mode(), merge(st, method, **options) as run:
        emb = st.encode(list(texts), batch_size=batch, convert_to_tensor=True, show_progress_bar=False)
    return emb.float().cpu(), run.kept_ratio, run


@cache
def plain_embeddings(model: str, dataset: str, batch: int, max_length: int) -> torch.Tensor:
    return encode(cached_encoder(model), DATASETS[dataset]().documents, "none", 1.0, batch, max_length)[0]


def ranks(queries: torch.Tensor, documents: torch.Tensor) -> list[int]:
    """1-based rank of each query's own document among all documents (cosine; ties count against it)."""
    q = torch.nn.functional.normalize(queries, dim=-1)
    d = torch.nn.functional.normalize(documents, dim=-1)
    scores = q @ d.T
    own = scores.diagonal().unsqueeze(1)
    return ((scores > own).sum(1) + (scores == own).sum(1)).tolist()  # own counted once: rank >= 1


def retrieval(model: str, dataset: str, method: str, keep: float, batch: int = 32, max_length: int = 256) -> dict:
    """Both sides encoded under the method, as a user would index and query with it."""
    st = cached_encoder(model)
    pairs = DATASETS[dataset]()
    full_docs = plain_embeddings(model, dataset, batch, max_length)
    if method.endswith(SEARCHED) and keep < 1:
        searched_schedule(model, method.removesuffix(SEARCHED), keep)  # searched before the clock starts
    start = now()
    with PeakMemory() as peak:
        docs, kept, run = encode(st, pairs.documents, method, keep, batch, max_length, model)
        queries, _, _ = encode(st, pairs.queries, method, keep, batch, max_length, model)
    seconds = now() - start
    found = ranks(queries, docs)
    cosine = torch.nn.functional.cosine_similarity(docs, full_docs).tolist()
    return {"hits": [int(r == 1) for r in found], "rr": [1.0 / r for r in found], "cosine": cosine,
            "kept_ratio": kept, "seconds": seconds, "peak_rss_mb": peak.rss_mb, "pairs": len(found),
            "recall_at_1": statistics.fmean(int(r == 1) for r in found),
            "mrr": statistics.fmean(1.0 / r for r in found), "cosine_mean": statistics.fmean(cosine)}


def throughput(model: str, method: str, keep: float, tokens: int, batch: int = 32, batches: int = 2,
               repeats: int = 3) -> dict:
    """Sentences/s at `batch` passages of exactly `tokens` tokens (median of `repeats`, after one warm-up),
    peak RSS, kept ratio and the FLOPs of the whole workload next to the plain model's."""
    st = cached_encoder(model)
    texts = passages(st.tokenizer, tokens, batch * batches)
    encode(st, texts[:batch], method, keep, batch, tokens, model)  # warm-up (and any schedule search)
    times = []
    with PeakMemory() as peak:
        for _ in range(repeats):
            start = now()
            _, kept, run = encode(st, texts, method, keep, batch, tokens, model)
            times.append(now() - start)
    config = st[0].auto_model.config
    rows = torch.full((len(texts),), tokens)
    full = block_flops(config, rows, rows) * config.num_hidden_layers
    mine = run.flops if run.method is not None else full  # the last repeat, all its batches
    return {"sentences_per_s": len(texts) / statistics.median(times), "seconds_all": times, "kept_ratio": kept,
            "peak_rss_mb": peak.rss_mb, "gflops": mine / 1e9, "gflops_full": full / 1e9,
            "tokens": tokens, "batch": batch}
