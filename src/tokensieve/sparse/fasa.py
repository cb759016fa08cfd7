from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from tokensieve.core.hooks import attention_implementation
from tokensieve.sparse.base import KeyChannels, SelectPolicy

_TABLES: dict[tuple, dict[int, list[list[int]]]] = {}  # (model key, chunks, file) -> layer -> dominant pairs
_LOCK = threading.Lock()
_CAPTURE = "tokensieve_fasa_calibrate"


def chunk_contributions(q: Tensor, k: Tensor) -> Tensor:
    """|q·k| split by RoPE frequency pair (i, i + dim/2) under transformers' rotate_half layout.

    q [b, h, g, d], k [b, h, n, d] -> [h, d/2] mean absolute contribution of each frequency chunk."""
    half = q.shape[-1] // 2
    parts = q.unsqueeze(3) * k.unsqueeze(2)  # [b, h, g, n, d]
    pair = parts[..., :half] + parts[..., half:]
    return pair.abs().mean(dim=(0, 2, 3))


def model_key(model) -> str:
    """What a calibration table belongs to: the model's source and shape."""
    config = model.config.get_text_config()
    return (f"{config.name_or_path or type(model).__name__}|{config.num_hidden_layers}L|"
            f"{config.num_attention_heads}x{getattr(config, 'head_dim', None)}")


def _calibration_ids(model, tokens: int) -> Tensor:
    """Real prose through the model's own tokenizer when both are installed; else a seeded random sequence."""
    try:
        from transformers import AutoTokenizer

        from tokensieve.data.corpus import haystack

        tokenizer = AutoTokenizer.from_pretrained(model.config.name_or_path)
        ids = tokenizer(haystack(tokenizer, tokens), return_tensors="pt").input_ids[:, :tokens]
    except Exception:  # noqa: BLE001  (no tokenizer or corpus: calibration still works on random ids)
        generator = torch.Generator().manual_seed(0)
        ids = torch.randint(0, model.config.get_text_config().vocab_size, (1, tokens), generator=generator)
    return ids.to(model.device)


def calibrate(model, chunks: int, tokens: int = 512, last: int = 64) -> dict[int, list[list[int]]]:
    """Per full-attention layer and KV head, the `chunks` RoPE frequency pairs that carry most of |q·k| for the
    last `last` queries of a dense forward over `tokens` calibration tokens."""
    table: dict[int, list[list[int]]] = {}

    def capture(module, query, key, value, attention_mask, **kwargs):
        if getattr(module, "sliding_window", None) is None:
            batch, q_heads, _, dim = query.shape
            q = query[:, :, -last:].reshape(batch, key.shape[1], -1, dim)  # the group's queries share a KV head
            table[module.layer_idx] = chunk_contributions(q.float(), key.float()).topk(chunks, -1).indices.tolist()
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register(_CAPTURE, capture)
    with attention_implementation(model, _CAPTURE), torch.inference_mode():
        model(input_ids=_calibration_ids(model, tokens), use_cache=False)
    return table


@dataclass
class FASA(SelectPolicy):
    """FASA, frequency-aware sparse attention: a few RoPE frequency chunks dominate each head's Q·K. A calibration
    pass finds, per layer and KV head, the `chunks` dominant frequency pairs; at decode, tokens are scored with
    only those chunks, and attention runs exactly over the selected subset.

    Calibration runs in `prepare()`, before the first forward, on real prose (the essays) and is keyed by the
    model, so one table never serves another model. `calibration`: a JSON file holding tables per model key;
    a missing table is computed and added to it (written atomically)."""

    name = "fasa"

    chunks: int = 8
    calibration: str | None = None

    def state_bytes(self, rows: int, kv_heads: int, head_dim: int, element: int,
                    kv_bits: int | None = None) -> int:
        """The copied key channels, `chunks` frequency pairs (two channels each) of every cached key, at most: they
        grow like the cache (`append_rows`: a full buffer grows by a quarter and 64 rows), and their int64 indices."""
        channels = kv_heads * 2 * self.chunks
        return (rows + rows // 4 + 65) * channels * element + channels * 8

    def prepare(self, session, model) -> None:
        key = (model_key(model), self.chunks, self.calibration)
        with _LOCK:
            if key not in _TABLES:
                _TABLES[key] = self._load_or_calibrate(model, key[0])
        session.prepared["fasa"] = _TABLES[key]

    def _load_or_calibrate(self, model, name: str) -> dict[int, list[list[int]]]:
        path = Path(self.calibration) if self.calibration else None
        stored = json.loads(path.read_text()) if path and path.exists() else {}
        entry = stored.get(name, {}).get(str(self.chunks))
        if entry is not None:
            return {int(layer): pairs for layer, pairs in entry.items()}
        table = calibrate(model, self.chunks)
        if path:
            stored.setdefault(name, {})[str(self.chunks)] = table
            partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
            partial.write_text(json.dumps(stored))
            os.replace(partial, path)
        return table

    def scores(self, session, module, q: Tensor, keys: Tensor) -> Tensor:
        pairs = torch.tensor(session.prepared["fasa"][module.layer_idx], device=keys.device)  # [kv_heads, chunks]
        dims = torch.cat([pairs, pairs + q.shape[-1] // 2], -1)  # [kv_heads, 2*chunks]
        k_part = self.scratch(session, module, "fasa", lambda: KeyChannels(dims)).update(keys)
        q_part = q.gather(-1, dims[None, :, None, :].expand(q.shape[0], -1, q.shape[2], -1))
        return torch.einsum("bhgd,bhnd->bhgn", q_part, k_part).amax(2)
