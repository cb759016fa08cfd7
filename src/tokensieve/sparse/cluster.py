from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.sparse.base import SelectPolicy


def kmeans(points: Tensor, k: int, iterations: int = 6) -> tuple[Tensor, Tensor]:
    """Batched k-means with cosine assignment: points [b, h, n, d] -> (centroids [b, h, k, d], labels [b, h, n])."""
    n = points.shape[2]
    start = torch.linspace(0, n - 1, k, device=points.device).long()
    centroids = points[:, :, start].clone()
    unit = torch.nn.functional.normalize(points, dim=-1)
    for _ in range(iterations):
        labels = torch.einsum("bhnd,bhkd->bhnk", unit, torch.nn.functional.normalize(centroids, dim=-1)).argmax(-1)
        sums = torch.zeros_like(centroids).scatter_add_(2, labels.unsqueeze(-1).expand_as(points), points)
        counts = torch.zeros(*centroids.shape[:3], device=points.device).scatter_add_(
            2, labels, torch.ones_like(labels, dtype=torch.float32))
        centroids = torch.where(counts.unsqueeze(-1) > 0, sums / counts.clamp(min=1).unsqueeze(-1), centroids)
    return centroids, labels


@dataclass
class Cluster(SelectPolicy):
    """Clustered sparse attention (the Sparse VideoGen2 idea, applied to text): k-means groups
    the cached keys into semantically close clusters once per sequence (tokens decoded later compete on their exact
    score); each decode query ranks clusters by centroid score, takes clusters until their estimated softmax
    mass reaches `top_p`, and keeps the best-budget tokens from them."""

    name = "cluster"

    cluster_size: int = 32
    top_p: float = 0.95

    def scores(self, session, module, q: Tensor, keys: Tensor) -> Tensor:
        pads = session.pad_counts(keys.shape[0])

        def build():  # per sequence, over its own tokens only (padding never joins a cluster)
            n = keys.shape[2]
            parts = [kmeans(keys[b : b + 1, :, pad:].float(), max(1, (n - pad) // self.cluster_size))
                     for b, pad in enumerate(pads)]
            return {"n": n, "parts": parts}

        memo = self.scratch(session, module, "clusters", build)
        rows = []
        for b, ((centroids, labels), pad) in enumerate(zip(memo["parts"], pads, strict=True)):
            clustered = self._cluster_scores(q[b : b + 1], centroids, labels, module.scaling)
            # tokens decoded after clustering belong to no cluster: they compete on their exact score
            tail = torch.einsum("bhgd,bhnd->bhgn", q[b : b + 1].float(), keys[b : b + 1, :, memo["n"]:].float())
            hidden = clustered.new_full((1, clustered.shape[1], pad), float("-inf"))
            rows.append(torch.cat([hidden, clustered, tail.amax(2) * module.scaling], -1))
        return torch.cat(rows, 0)

    def _cluster_scores(self, q: Tensor, centroids: Tensor, labels: Tensor, scaling: float) -> Tensor:
        """[1, kv_heads, clustered]: a token's cluster score, -inf outside the clusters holding `top_p` mass."""
        sizes = torch.zeros(*centroids.shape[:3], device=q.device).scatter_add_(
            2, labels, torch.ones_like(labels, dtype=torch.float32))
        logits = torch.einsum("bhgd,bhkd->bhgk", q.float(), centroids).amax(2) * scaling
        mass = torch.softmax(logits + sizes.clamp(min=1).log(), -1)  # estimated share of attention per cluster
        order = mass.sort(-1, descending=True)
        within = (order.values.cumsum(-1) - order.values) < self.top_p  # clusters needed to reach top_p
        allowed = torch.zeros_like(within).scatter(-1, order.indices, within)
        return logits.gather(-1, labels).masked_fill(~allowed.gather(-1, labels), float("-inf"))
