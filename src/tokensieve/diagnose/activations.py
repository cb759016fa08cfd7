"""Massive activations (Sun et al., "Massive Activations in Large Language Models", arXiv 2402.17762).

A few hidden-state entries, in a few fixed feature dimensions and on a few tokens (the first token, delimiters),
are orders of magnitude larger than the rest of the residual stream; they act as fixed biases and go with the
attention sinks. Here an entry is massive when |h| >= `ratio` x the median |h| of its layer's output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from tokensieve.diagnose.probe import LayerActivations
from tokensieve.diagnose.sinks import Sink


@dataclass
class MassiveEntry:
    token: int
    dim: int
    value: float


@dataclass
class LayerMassive:
    layer: int
    max: float
    median: float
    ratio: float  # max / median
    entries: list[MassiveEntry]  # the massive entries (largest first, among the probe's top-k)
    tokens: list[int]  # distinct token positions carrying one
    dims: list[int]  # distinct feature dimensions
    on_sinks: bool | None  # every massive token is a sink token (None: no massive entries)
    sink_tokens: list[int] = field(default_factory=list)  # massive tokens that are sinks

    def to_dict(self) -> dict:
        return asdict(self)


def massive_activations(layers: list[LayerActivations], sinks: list[Sink], ratio: float = 100.0,
                        keep: int = 8) -> list[LayerMassive]:
    """Per layer, the entries above `ratio` x median; marks the sinks that carry one (mutates `sinks`)."""
    sink_pos = {s.position: s for s in sinks}
    result = []
    for idx, act in enumerate(layers):
        floor = ratio * max(act.median, 1e-12)
        hit = act.top_values >= floor
        entries = [MassiveEntry(int(t), int(d), round(float(v), 2)) for t, d, v in
                   zip(act.top_tokens[hit], act.top_dims[hit], act.top_values[hit], strict=True)]
        tokens = sorted({e.token for e in entries})
        on = [t for t in tokens if t in sink_pos]
        for t in on:
            sink_pos[t].massive = True
            sink_pos[t].massive_layers.append(idx)
        top = float(act.top_values[0])
        result.append(LayerMassive(
            layer=idx, max=round(top, 2), median=round(act.median, 4), ratio=round(top / max(act.median, 1e-12), 1),
            entries=entries[:keep], tokens=tokens, dims=sorted({e.dim for e in entries}),
            on_sinks=(len(on) == len(tokens)) if tokens else None, sink_tokens=on,
        ))
    return result
