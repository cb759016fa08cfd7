"""`inspect`: text -> one probed forward -> sinks, massive activations, head states -> a JSON-able report."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from tokensieve.diagnose.activations import LayerMassive, massive_activations
from tokensieve.diagnose.heads import HeadStat, compare_heads, dormant_per_layer, head_stats
from tokensieve.diagnose.probe import decoder_layers, run_probe
from tokensieve.diagnose.sinks import Sink, SinkThresholds, find_sinks, mass_share
from tokensieve.errors import TokensieveError

VERSION = 1


@dataclass(frozen=True)
class Settings:
    sinks: SinkThresholds = SinkThresholds()
    dormant_at: float = 0.8  # a head is dormant when >= this share of its attention goes to sinks
    massive_ratio: float = 100.0  # an activation is massive at >= this x its layer's median |h|
    max_tokens: int = 4096  # refuse longer texts (one forward holds O(tokens x hidden) per layer)


@dataclass
class Report:
    model: str
    tokens: int
    n_layers: int
    n_heads: int
    layer_types: list[str]
    bos: bool  # the tokenizer prepended a special token at position 0
    token_texts: list[str]
    sinks: list[Sink]
    heads: list[HeadStat]
    activations: list[LayerMassive]
    settings: Settings = field(default_factory=Settings)
    comparison: dict | None = None
    # arrays for the plots (not in the JSON)
    share: Tensor | None = None  # [layers, tokens] share of each layer's attention mass
    token_max: Tensor | None = None  # [layers, tokens] max |h| per token

    @property
    def dormant_per_layer(self) -> list[int]:
        return dormant_per_layer(self.heads, self.n_layers)

    def layer_summary(self) -> list[dict]:
        dormant = self.dormant_per_layer
        rows = []
        for idx in range(self.n_layers):
            in_layer = [s for s in self.sinks if idx in s.layers]
            heads = [h for h in self.heads if h.layer == idx]
            rows.append({
                "layer": idx, "type": self.layer_types[idx], "sinks": [s.position for s in in_layer],
                "sink_share": round(float(self.share[idx, [s.position for s in self.sinks]].sum()), 4)
                if self.share is not None and self.sinks else None,
                "dormant_heads": dormant[idx], "mean_entropy": round(sum(h.entropy for h in heads) / len(heads), 4),
                "massive_ratio": self.activations[idx].ratio,
            })
        return rows

    def to_dict(self) -> dict:
        return {
            "version": VERSION, "model": self.model, "tokens": self.tokens, "n_layers": self.n_layers,
            "n_heads": self.n_heads, "layer_types": self.layer_types, "bos": self.bos,
            "settings": asdict(self.settings),
            "sinks": [s.to_dict() for s in self.sinks],
            "primary_sinks": [s.position for s in self.sinks if s.kind == "primary"],
            "dormant_heads": sum(h.dormant for h in self.heads),
            "layers": self.layer_summary(),
            "heads": [h.to_dict() for h in self.heads],
            "activations": [a.to_dict() for a in self.activations],
            "comparison": self.comparison,
            "token_texts": self.token_texts,
        }

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path


def encode(tokenizer, text: str, max_tokens: int, limit: int | None) -> Tensor:
    """Token ids [1, T] of `text`, or one clear error for empty or too-long input."""
    if not text.strip():
        raise TokensieveError("the text is empty")
    ids = tokenizer(text, return_tensors="pt").input_ids
    most = min(max_tokens, limit) if limit else max_tokens
    if ids.shape[1] > most:
        raise TokensieveError(
            f"the text is {ids.shape[1]} tokens; the limit is {most} (--max-tokens {max_tokens}"
            + (f", model maximum {limit})" if limit else ")")
        )
    if ids.shape[1] < 2:
        raise TokensieveError("the text is too short to measure attention (fewer than 2 tokens)")
    return ids


def inspect_text(model: torch.nn.Module, tokenizer, text: str, *, model_name: str = "",
                 settings: Settings = Settings(), on_layer: Callable[[int], None] | None = None,
                 block: int = 256) -> Report:
    """Sinks, massive activations and head states of `model` on `text`, from one probed forward pass."""
    config = model.config.get_text_config(decoder=True)
    n_layers = len(decoder_layers(model))
    ids = encode(tokenizer, text, settings.max_tokens, getattr(config, "max_position_embeddings", None))
    probe = run_probe(model, ids, on_layer=on_layer, block=block)
    texts = [tokenizer.decode([i]) for i in ids[0].tolist()]
    sinks = find_sinks(probe.attention, texts, settings.sinks)
    heads = head_stats(probe.attention, [s.position for s in sinks], settings.dormant_at)
    acts = massive_activations(probe.activations, sinks, settings.massive_ratio)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    types = list(getattr(config, "layer_types", None) or ["full_attention"] * n_layers)
    return Report(
        model=model_name or getattr(config, "_name_or_path", type(model).__name__), tokens=ids.shape[1],
        n_layers=n_layers, n_heads=probe.attention[0].mass.shape[0], layer_types=types,
        bos=int(ids[0, 0]) in special, token_texts=texts, sinks=sinks, heads=heads, activations=acts,
        settings=settings, share=mass_share(probe.attention),
        token_max=torch.stack([a.token_max for a in probe.activations]),
    )


def compare(a: Report, b: Report) -> dict:
    """How head states change from input `a` to input `b` (stored on `a.comparison`)."""
    a.comparison = {"tokens": [a.tokens, b.tokens], **compare_heads(a.heads, b.heads)}
    return a.comparison
