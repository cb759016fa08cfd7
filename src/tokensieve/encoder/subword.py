from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch
from torch import Tensor

from tokensieve.encoder.base import EncoderMethod, Seen, cosine, ranked, removable
from tokensieve.encoder.tokens import Tokens


@cache  # one vocabulary scan per tokenizer, not one per merge() context
def continuation_ids(tokenizer) -> Tensor:
    """bool [vocab]: the ids that continue a word rather than start one. WordPiece marks continuations with
    "##"; byte-level BPE (GPT-2, RoBERTa, code models) marks word starts with "Ġ" and SentencePiece with "▁"."""
    vocab = tokenizer.get_vocab()
    table = torch.zeros(max(vocab.values()) + 1, dtype=torch.bool)
    pieces = list(vocab)
    if any(p.startswith("##") for p in pieces):
        marks = {i for p, i in vocab.items() if p.startswith("##")}
    else:
        start = "Ġ" if any(p.startswith("Ġ") for p in pieces) else "▁"
        special = set(tokenizer.all_special_tokens)
        marks = {i for p, i in vocab.items() if not p.startswith(start) and p not in special and p[:1].isalnum()}
    table[list(marks)] = True
    return table


def word_ids(input_ids: Tensor, continuation: Tensor) -> Tensor:
    """[batch, tokens]: the index of the word each token belongs to (a continuation joins the word before)."""
    cont = continuation.to(input_ids.device)[input_ids.clamp(max=continuation.numel() - 1)]
    cont[:, 0] = False
    return torch.cumsum((~cont).long(), 1)


@dataclass
class SubwordMerge(EncoderMethod):
    """Subword merging: fold the pieces of one word into one row (size-weighted, proportional attention), the
    pieces most similar to the row before them first: ToMe's merge (arXiv 2210.09461) restricted to the
    tokenizer's own word boundaries, the "token merging for code models" idea, for any WordPiece, BPE or
    SentencePiece tokenizer. A layer removes at most the continuation pieces it has: where the schedule asks
    for more, the run keeps more and reports the ratio it really kept."""

    name = "subword"
    paper = "ToMe (arXiv 2210.09461) on word boundaries"
    needs = frozenset({"keys"})
    merges = True

    def reduce(self, tokens: Tokens, seen: Seen, remove: Tensor, layer: int, layers: int) -> Tokens:
        if tokens.word is None:
            return tokens
        previous = torch.roll(tokens.word, 1, 1)
        piece = removable(tokens) & (tokens.word == previous)
        piece[:, 0] = False
        similarity = cosine(seen.keys)
        to_previous = torch.diagonal(similarity, offset=-1, dim1=1, dim2=2)  # row i vs row i - 1
        score = torch.cat([to_previous.new_full((to_previous.shape[0], 1), float("-inf")), to_previous], 1)
        src = ranked(score, remove, piece)
        # each source joins the first row of its word that stays (a run of merged pieces joins one head)
        rows = torch.arange(src.shape[1], device=src.device).expand_as(src)
        head = torch.where(src, torch.zeros_like(rows), rows)
        head = torch.cummax(head, 1).values
        return tokens.merge(src, head)
