"""Stage: encoder layers · encode (embeddings under a merging/pruning method) · encode-schedule (search)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from tokensieve.commands.common import Device, guarded, out, read_text
from tokensieve.errors import TokensieveError

Encoder = Annotated[str, typer.Option("--model", "-m", help="Encoder zoo name (minilm-l6) or a local directory.")]
Method = Annotated[str, typer.Option(help="none, tome, pitome, zero_tprune, pool_attention, subword, random_prune.")]


def _lines(path: Path) -> list[str]:
    texts = [line for line in read_text(path, f"input {path}").splitlines() if line.strip()]
    if not texts:
        raise TokensieveError(f"input {path} has no non-empty line to encode")
    return texts


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder and rename: never a half-written output."""
    folder = path.resolve().parent
    if not folder.is_dir():
        raise TokensieveError(f"cannot write {path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@guarded
def encode(
    input_file: Annotated[Path, typer.Option("--input", "-i", help="Text file: one input per line.")],
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Embeddings as .npy, one row per input line.")],
    model: Encoder = "minilm-l6",
    method: Method = "none",
    keep: Annotated[float | None, typer.Option(help="Kept ratio in (0, 1]: share of token-rows the layers "
                                                    "process (default 1.0, or set by --r / --schedule).")] = None,
    r: Annotated[int | None, typer.Option("--r", help="ToMe-style: rows removed per layer.")] = None,
    schedule: Annotated[Path | None, typer.Option(help="Per-layer fractions from `encode-schedule`.")] = None,
    batch: int = 32,
    max_length: Annotated[int, typer.Option(help="Tokens per input (longer inputs are truncated).")] = 256,
    device: Device = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print sentences/s, kept ratio, peak RSS as JSON.")] = False,
) -> None:
    """Embed each line of --input with a sentence-transformers encoder, tokens merged or pruned between layers."""
    import numpy as np
    import torch

    from tokensieve.core.memory import PeakMemory, now
    from tokensieve.encoder import METHODS, merge
    from tokensieve.encoder.zoo import load_sentence_transformer

    if method != "none" and method not in METHODS:
        raise TokensieveError(f"unknown encoder method '{method}': choose from none, {', '.join(METHODS)}")
    if keep is not None and not 0 < keep <= 1:
        raise TokensieveError(f"--keep {keep} is outside (0, 1]")
    if batch < 1 or max_length < 2:
        raise TokensieveError("--batch must be >= 1 and --max-length >= 2")
    if out_file.suffix != ".npy":
        raise TokensieveError(f"--out {out_file} must end in .npy")
    texts = _lines(input_file)
    st = load_sentence_transformer(model, device)
    limit = st[0].auto_model.config.max_position_embeddings
    if max_length > limit:
        raise TokensieveError(f"--max-length {max_length} exceeds the model's maximum of {limit} tokens")
    st.max_seq_length = max_length
    reduced = merge(st, method, keep=keep, r=r, schedule=schedule)
    with torch.inference_mode(), reduced as run, PeakMemory(device) as peak:
        start = now()
        emb = st.encode(texts, batch_size=batch, convert_to_numpy=True, show_progress_bar=False)
        seconds = now() - start
    _atomic_write(out_file, lambda tmp: np.save(tmp, emb.astype(np.float32)))
    stats = {"sentences": len(texts), "sentences_per_s": round(len(texts) / seconds, 3),
             "kept_ratio": round(run.kept_ratio, 4), "peak_rss_mb": round(peak.rss_mb, 1), "seconds": round(seconds, 3),
             "gflops": round(run.flops / 1e9, 3) if run.method is not None else None, "method": method,
             "dim": int(emb.shape[1]), "device": device}
    if as_json:
        print(json.dumps(stats))
    else:
        out.print(f"wrote {len(texts)} embeddings ({emb.shape[1]} dims) to {out_file}: {stats['sentences_per_s']} "
                  f"sentences/s, kept ratio {stats['kept_ratio']}, peak RSS {stats['peak_rss_mb']} MB")


@guarded
def encode_schedule(
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Schedule JSON for `encode --schedule`.")],
    keep: Annotated[float, typer.Option(help="Target kept ratio in (0, 1).")],
    model: Encoder = "minilm-l6",
    method: Method = "tome",
    texts: Annotated[int, typer.Option(help="Calibration passages (essays, 256 tokens).")] = 32,
    steps: Annotated[int, typer.Option(help="Schedules evaluated after the geometric start.")] = 24,
    device: Device = "cpu",
) -> None:
    """Search per-layer removal fractions for a target kept ratio on calibration passages (training-free)."""
    from tokensieve.encoder import METHODS
    from tokensieve.encoder.data import passages
    from tokensieve.encoder.search import search
    from tokensieve.encoder.zoo import load_sentence_transformer

    if method not in METHODS:
        raise TokensieveError(f"unknown encoder method '{method}': choose from {', '.join(METHODS)}")
    if not 0 < keep < 1:
        raise TokensieveError(f"--keep {keep} must be in (0, 1) for a search")
    if texts < 1 or steps < 0:
        raise TokensieveError("--texts must be >= 1 and --steps >= 0")
    st = load_sentence_transformer(model, device)
    st.max_seq_length = 256
    found = search(st, method, keep, passages(st.tokenizer, 256, texts), steps=steps)
    _atomic_write(out_file, lambda tmp: found.schedule.save(tmp, model=model, method=method, target=keep,
                                                             calibration_cosine=round(found.cosine, 5),
                                                             geometric_cosine=round(found.start_cosine, 5)))
    out.print(f"wrote {out_file}: fractions {found.schedule.fractions}, kept ratio "
              f"{found.schedule.kept_ratio():.3f}; calibration cosine {found.cosine:.4f} "
              f"(geometric {found.start_cosine:.4f}, {found.evaluations} schedules tried)")


def register(app: typer.Typer) -> None:
    app.command()(encode)
    app.command("encode-schedule")(encode_schedule)
