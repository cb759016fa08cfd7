"""Token Recycling's adjacency matrix: for every token, the top-k tokens the model last predicted after it."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import Tensor

from tokensieve.errors import TokensieveError


class Adjacency:
    """[vocab, k] candidate next tokens per token, rewritten from the top-k logits of every verified position
    (Luo et al., "Turning Trash into Treasure", arXiv 2408.08696). Rows never written predict nothing useful
    (token 0); `seed()` fills them from the prompt's own bigrams. It outlives a request: save, load, warm-start."""

    def __init__(self, vocab: int, k: int = 8, device=None) -> None:
        if k < 1 or vocab < 1:
            raise TokensieveError(f"an adjacency matrix needs vocab >= 1 and k >= 1, got {vocab} x {k}")
        self.table = torch.zeros(vocab, k, dtype=torch.long, device=device)
        self.written = torch.zeros(vocab, dtype=torch.bool, device=device)

    @property
    def k(self) -> int:
        return self.table.shape[1]

    def update(self, tokens: Tensor, logits: Tensor) -> None:
        """Each of `tokens` [n] was followed, per the model, by the top-k of its row of `logits` [n, vocab]."""
        top = logits.topk(self.k, dim=-1).indices
        self.table[tokens] = top
        self.written[tokens] = True

    def seed(self, ids: list[int]) -> None:
        """Put the token that last followed each token in `ids` (the prompt) first in its row, the row's other
        candidates after it: the context's own continuations (what prompt lookup drafts) join what the model
        predicted elsewhere."""
        if len(ids) < 2:
            return
        device = self.table.device
        src, dst = torch.tensor(ids[:-1], device=device), torch.tensor(ids[1:], device=device)
        order = torch.arange(src.shape[0], device=device)
        latest = torch.full((self.table.shape[0],), -1, dtype=torch.long, device=device)
        latest.scatter_reduce_(0, src, order, "amax")
        last = latest[src] == order  # one write per token: its latest successor
        src, dst = src[last], dst[last]
        rows = self.table[src]
        again = (rows == dst[:, None]) | ~self.written[src][:, None]  # duplicates, and rows never written
        rest = rows.gather(1, torch.sort(again.int(), dim=1, stable=True).indices)[:, : self.k - 1]
        self.table[src] = torch.cat([dst[:, None], rest], 1)

    def draft(self, root: int, parents: Tensor, ranks: Tensor, levels: list[slice]) -> Tensor:
        """Tokens [size] of a draft tree grown from `root`, level by level: node i is row `parents[i]`'s token's
        `ranks[i]`-th candidate."""
        tokens = torch.empty(parents.shape[0], dtype=torch.long, device=self.table.device)
        tokens[0] = root
        for level in levels:
            tokens[level] = self.table[tokens[parents[level]], ranks[level]]
        return tokens

    def calibrate(self, model, rows: list[list[int]], chunk: int = 512) -> None:
        """Warm start by teacher forcing: every position of every row of token ids writes its token's row from
        the model's top-k next-token logits there (what decoding that text would have written)."""
        with torch.inference_mode():
            for ids in rows:
                ids = ids[: getattr(model.config.get_text_config(), "max_position_embeddings", len(ids))]
                for lo in range(0, len(ids), chunk):  # chunks of one forward each, no cache across them
                    piece = torch.tensor([ids[lo:lo + chunk]], device=self.table.device)
                    logits = model(input_ids=piece, use_cache=False).logits[0]
                    self.update(piece[0], logits)

    def copy(self) -> Adjacency:
        out = Adjacency(self.table.shape[0], self.k, self.table.device)
        out.table.copy_(self.table)
        out.written.copy_(self.written)
        return out

    def save(self, path: str | Path) -> None:
        torch.save({"table": self.table.cpu(), "written": self.written.cpu()}, Path(path))

    @classmethod
    def load(cls, path: str | Path, vocab: int, device=None) -> Adjacency:
        try:
            data = torch.load(Path(path), map_location="cpu", weights_only=True)
            table, written = data["table"], data["written"]
        except (OSError, KeyError, RuntimeError, TypeError, pickle.UnpicklingError) as exc:
            raise TokensieveError(f"cannot read an adjacency matrix from {path}: {exc}") from None
        if table.dim() != 2 or table.shape[0] != vocab:
            raise TokensieveError(f"{path} holds a {tuple(table.shape)} matrix; this model's vocabulary is {vocab}")
        out = cls(vocab, table.shape[1], device)
        out.table.copy_(table)
        out.written.copy_(written)
        return out
