"""`merge(model, method, keep=…)`: run an encoder with token reduction between its layers.

One attention implementation ("tokensieve_encoder", registered through transformers' AttentionInterface) attends
over the rows the encoder still carries, with their padding and size bias, and records what the method's scorer
needs. A forward hook on each layer hands its output to the method, which returns fewer rows for the next layer.
Works for any transformers encoder whose layers call the attention interface (BERT family, ViT) and around a
sentence-transformers `SentenceTransformer`, whose pooling then weighs each row by the tokens it stands for.
Leaving the context restores the model exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import AttentionInterface

from tokensieve.core.hooks import attention_implementation
from tokensieve.encoder.base import EncoderMethod, Seen
from tokensieve.encoder.methods import make
from tokensieve.encoder.schedule import Schedule
from tokensieve.encoder.subword import continuation_ids, word_ids
from tokensieve.encoder.tokens import Tokens
from tokensieve.errors import TokensieveError

NAME = "tokensieve_encoder"
RUN_ATTR = "_tokensieve_encoder_run"


@dataclass
class EncoderRun:
    """Everything that changes while a model runs under `merge()`; the method object stays configuration."""

    method: EncoderMethod | None
    schedule: Schedule
    layers: int
    pool: str  # "cls" or "mean": which query the pooling-attention scorer asks
    continuation: Tensor | None = None
    tokens: Tokens | None = None
    seen: Seen = field(default_factory=Seen)
    inputs: dict = field(default_factory=dict)
    rows_in: int = 0  # real tokens entering the first layer, summed over forwards
    rows_processed: int = 0  # real rows entering every layer, summed
    config: object = None  # the model's config, for the FLOPs count
    flops: float = 0.0  # multiply-adds x2 of the projections, attention and MLPs run, summed over forwards
    _attn_rows: Tensor | None = None

    @property
    def kept_ratio(self) -> float:
        """Measured: rows the attention blocks and MLPs processed / (tokens in x 2 x layers); 1.0 before any
        forward or without a method (the plain model)."""
        if not self.rows_in or self.method is None:
            return 1.0
        return self.rows_processed / (self.rows_in * 2 * self.layers)

    def enter(self, layer: int, hidden: Tensor) -> None:
        """A layer starts: the first one sets up the rows from the input and its padding mask."""
        if layer == 0:
            mask = self.inputs.get("attention_mask")
            mask = mask if mask is not None and mask.shape[:2] == hidden.shape[:2] else None
            ids = self.inputs.get("input_ids")
            words = word_ids(ids, self.continuation) if self.continuation is not None and ids is not None else None
            self.tokens = Tokens.start(hidden, mask, protect_first=True, word=words)
            self.rows_in += int(self.tokens.counts.sum())
        self.rows_processed += int(self.tokens.counts.sum())  # the attention block's rows
        self._attn_rows = self.tokens.counts

    def attend(self, layer: int, query: Tensor, key: Tensor, value: Tensor, scaling: float | None) -> Tensor:
        tokens = self.tokens
        bias = tokens.bias(self.method is not None and self.method.merges).to(query.dtype)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=bias, scale=scaling)
        if self.method is not None and (self.schedule.mid or layer < self.layers - 1):
            self.seen = self._record(query, key, bias, scaling)
        return out

    def _record(self, query: Tensor, key: Tensor, bias: Tensor, scaling: float | None) -> Seen:
        needs = self.method.needs
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        seen = Seen(keys=key.mean(1) if "keys" in needs else None)
        if "pool" in needs:
            if self.pool == "cls":
                probe = query[:, :, :1]
            else:
                weight = self.tokens.size[:, None, :, None].to(query.dtype)
                probe = (query * weight).sum(2, keepdim=True) / weight.sum(2, keepdim=True).clamp(min=1e-9)
            seen.pool = torch.softmax(probe @ key.transpose(-1, -2) * scale + bias, -1).mean(1)[:, 0]
        if "graph" in needs:
            heads = query.shape[1]
            graph = None
            for h in range(heads):  # one head at a time: a [batch, rows, rows] buffer, not [batch, heads, ...]
                probs = torch.softmax(query[:, h] @ key[:, h].transpose(-1, -2) * scale + bias[:, 0], -1)
                graph = probs / heads if graph is None else graph + probs / heads
            seen.graph = graph
        return seen

    def reduce(self, layer: int, hidden: Tensor) -> Tensor:
        """At the layer's reduction point (between attention and MLP, or after the layer): fewer rows go on."""
        self.tokens.hidden = hidden
        if not self.schedule.mid:
            self.rows_processed += int(self.tokens.counts.sum())  # the MLP ran on the rows attention saw
        if self.method is not None:
            remove = self.schedule.remove(layer, self.layers, self.tokens.counts)
            if bool((remove > 0).any()):
                self.tokens = self.method.reduce(self.tokens, self.seen, remove, layer, self.layers)
        if self.schedule.mid:
            self.rows_processed += int(self.tokens.counts.sum())  # the MLP's rows
        mlp_rows = self.tokens.counts if self.schedule.mid else self._attn_rows
        self.flops += block_flops(self.config, self._attn_rows, mlp_rows)
        self.seen = Seen()
        return self.tokens.hidden

    def sizes(self) -> Tensor:
        """[batch, rows] after the last forward: the tokens each output row stands for (0 = padding)."""
        if self.tokens is None:
            raise TokensieveError("no forward has run inside tokensieve.merge() yet")
        return self.tokens.size

    def mean_pool(self, last_hidden: Tensor) -> Tensor:
        """Size-weighted mean of the output rows: what mean pooling over the original tokens becomes."""
        weight = self.sizes().unsqueeze(-1).to(last_hidden.dtype)
        return (last_hidden * weight).sum(1) / weight.sum(1).clamp(min=1e-9)


def block_flops(config, attn_rows: Tensor, mlp_rows: Tensor) -> float:
    """Multiply-adds x2 of one layer over a batch: QKV and output projections and attention over the rows its
    attention block saw (per sequence), the MLP over the rows its MLP saw."""
    d, f = config.hidden_size, config.intermediate_size
    a, m = attn_rows.double(), mlp_rows.double()
    return float((8 * a * d * d + 4 * a * a * d + 4 * m * d * f).sum())


def encoder_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """The attention of a layer under `merge()`: the run's rows, padding and size bias (the model's own mask,
    built for the unreduced input, is replaced by it)."""
    found = getattr(module, RUN_ATTR, None)
    if found is None:
        raise TokensieveError("the tokensieve encoder attention ran outside tokensieve.merge()")
    run, layer = found
    return run.attend(layer, query, key, value, scaling).transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, encoder_attention)


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's stack of transformer layers: the longest ModuleList of num_hidden_layers blocks."""
    count = getattr(model.config, "num_hidden_layers", None)
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) == count]
    if not lists:
        raise TokensieveError(f"{type(model).__name__} has no list of {count} encoder layers to reduce tokens in")
    return lists[0]


def residual_inside_attention(layer: nn.Module) -> bool:
    """BERT-style post-LN layers add the residual inside the attention block, so its output alone feeds the MLP
    and rows can go between the two (ToMe's merge point). Pre-LN layers (ViT) add it in the layer itself."""
    attention = getattr(layer, "attention", None)
    return hasattr(layer, "intermediate") and attention is not None and hasattr(attention, "output")


def _parts(model) -> tuple[nn.Module, nn.Module | None, str]:
    """(the transformers model, the sentence-transformers input module or None, its pooling mode)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:  # pragma: no cover - sentence-transformers is a dependency
        SentenceTransformer = ()  # noqa: N806
    if isinstance(model, SentenceTransformer):
        first = model[0]
        pooling = next((m for m in model if hasattr(m, "pooling_mode")), None)
        mode = getattr(pooling, "pooling_mode", "mean")
        mode = mode if isinstance(mode, str) else mode[0]
        return first.auto_model, first, "cls" if mode == "cls" else "mean"
    if not hasattr(model, "config"):
        raise TokensieveError(f"tokensieve.merge() takes a transformers model or a SentenceTransformer, "
                              f"not {type(model).__name__}")
    return model, None, "cls"


@contextmanager
def merge(model, method: str | EncoderMethod = "tome", keep: float | None = None, r: int | None = None,
          schedule: str | Schedule | None = None, pool: str | None = None, tokenizer=None,
          **options) -> Iterator[EncoderRun]:
    """Reduce tokens between the layers of `model` (a transformers encoder or a SentenceTransformer) while
    inside the context. `keep` is the kept ratio (share of token-rows the layers process), `r` ToMe's rows per
    layer, `schedule` a JSON path or Schedule from `tokensieve encode-schedule`. Nothing to remove (keep 1.0,
    r 0, method "none") runs the plain model untouched."""
    net, st_module, default_pool = _parts(model)
    layers = encoder_layers(net)
    mid = all(residual_inside_attention(layer) for layer in layers)
    if isinstance(schedule, Schedule):
        plan = dataclasses.replace(schedule, mid=mid)
    else:
        plan = Schedule.build(len(layers), mid, keep=keep, r=r, path=schedule)
    method_obj = method if isinstance(method, EncoderMethod) or method in (None, "none") else make(method, **options)
    method_obj = None if method_obj in (None, "none") else method_obj
    run = EncoderRun(method_obj, plan, len(layers), pool or default_pool, config=net.config)
    if method_obj is None or plan.is_noop:
        yield run  # the plain model: nothing patched
        return
    if getattr(net, RUN_ATTR, None) is not None:
        raise TokensieveError("this model is already inside tokensieve.merge(): one method per model at a time")
    if method_obj.name == "subword":
        tok = tokenizer or getattr(model, "tokenizer", None)
        if tok is None:
            raise TokensieveError("method 'subword' needs the tokenizer: merge(model, 'subword', tokenizer=tok)")
        run.continuation = continuation_ids(tok)
    handles = []
    for index, layer in enumerate(layers):
        for sub in layer.modules():
            setattr(sub, RUN_ATTR, (run, index))
        handles.append(layer.register_forward_pre_hook(_entered(run, index)))
        handles.append((layer.attention if mid else layer).register_forward_hook(_reduced(run, index)))
    setattr(net, RUN_ATTR, run)
    original_forward = st_module.forward if st_module is not None else None
    net.forward = _inputs_seen(net.forward, run)  # an attribute, not a hook: sentence-transformers calls .forward
    try:
        with attention_implementation(net, NAME):
            if st_module is not None:
                st_module.forward = _pooled_by_size(original_forward, run)
            yield run
    finally:
        del net.forward
        if st_module is not None:
            del st_module.forward  # the class's own forward again
        for h in handles:
            h.remove()
        for layer in layers:
            for sub in layer.modules():
                if hasattr(sub, RUN_ATTR):
                    delattr(sub, RUN_ATTR)
        delattr(net, RUN_ATTR)


def _entered(run: EncoderRun, index: int):
    def hook(_module, args):
        run.enter(index, args[0])

    return hook


def _reduced(run: EncoderRun, index: int):
    def hook(_module, _args, output):
        if isinstance(output, tuple):
            return (run.reduce(index, output[0]), *output[1:])
        return run.reduce(index, output)

    return hook


def _inputs_seen(forward, run: EncoderRun):
    """The model's forward, recording its inputs (padding mask, token ids) for the run first."""

    def wrapped(*args, **kwargs):
        run.inputs = dict(kwargs)
        if args:
            run.inputs.setdefault("input_ids", args[0])
        return forward(*args, **kwargs)

    return wrapped


def _pooled_by_size(forward, run: EncoderRun):
    """sentence-transformers' input module, whose features then carry each row's size as the attention mask
    (mean pooling becomes the size-weighted mean over the original tokens) and the class row for CLS pooling."""

    def wrapped(features, **kwargs):
        features = forward(features, **kwargs)
        features["attention_mask"] = run.sizes().to(features["token_embeddings"].dtype)
        features["cls_token_embeddings"] = features["token_embeddings"][:, 0]
        return features

    return wrapped
