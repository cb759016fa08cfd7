"""Text as selectable units of the target tokenizer's tokens, with the exact characters each one covers.

A unit is one token, or the few tokens that share characters (a multi-byte character split across byte-level
BPE tokens), so any subset of units is a valid substring sequence of the original text: compressed text is
always made of the input's own characters, never of decoded fragments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import Tensor

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class Units:
    """`text`, its token ids, and per unit: character span, token span, and sentence index."""

    text: str
    ids: Tensor  # [tokens]
    char_spans: list[tuple[int, int]]
    token_spans: list[tuple[int, int]]
    sentence: list[int]

    def __len__(self) -> int:
        return len(self.char_spans)

    @property
    def sizes(self) -> list[int]:
        return [b - a for a, b in self.token_spans]

    def join(self, keep: list[int]) -> str:
        """The text of the kept units, in their original order."""
        return "".join(self.text[self.char_spans[u][0]:self.char_spans[u][1]] for u in sorted(keep))

    def pool(self, token_scores: Tensor, how: str = "max") -> Tensor:
        """Per-unit score from per-token scores."""
        out = torch.empty(len(self))
        for u, (a, b) in enumerate(self.token_spans):
            chunk = token_scores[a:b]
            out[u] = chunk.max() if how == "max" else chunk.mean()
        return out


def split(tokenizer, text: str) -> Units:
    """Tokenise `text` (no special tokens) and group tokens whose character spans overlap into units."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    char_spans: list[list[int]] = []
    token_spans: list[list[int]] = []
    for i, (start, end) in enumerate(offsets):
        if char_spans and start < char_spans[-1][1]:
            char_spans[-1][1] = max(char_spans[-1][1], end)
            token_spans[-1][1] = i + 1
        else:
            char_spans.append([start, end])
            token_spans.append([i, i + 1])
    for u in range(len(char_spans) - 1):  # cover every character: gaps go to the unit before them
        char_spans[u][1] = char_spans[u + 1][0]
    if char_spans:
        char_spans[0][0], char_spans[-1][1] = 0, len(text)
    ends = sorted({m.end() for m in _SENTENCE_END.finditer(text)})
    sentence, s = [], 0
    for start, _ in char_spans:
        while s < len(ends) and start >= ends[s]:
            s += 1
        sentence.append(s)
    return Units(text, torch.tensor(enc["input_ids"], dtype=torch.long),
                 [tuple(c) for c in char_spans], [tuple(t) for t in token_spans], sentence)


def count(tokenizer, text: str) -> int:
    """Tokens of `text` as the target model would see them (no special tokens)."""
    return len(tokenizer(text, add_special_tokens=False).input_ids) if text else 0
