from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from tokensieve.core.select import vote
from tokensieve.errors import TokensieveError
from tokensieve.sparse.base import grouped, pick, sparse_attend
from tokensieve.sparse.quest import Quest


@dataclass
class QuestVote(Quest):
    """Quest's page bound as a pre-filter for TokenSelect's vote. Quest (Tang et al., arXiv 2406.10774) ranks the
    pages by the upper bound of q·k their key summaries give; the best pages' tokens, `candidates` times the budget,
    have their keys read (over a quantized store only those are dequantized) and ranked by TokenSelect's soft vote
    (Wu et al., arXiv 2411.02886: each query head's softmax over them, summed over the KV head's query group); the
    budget's best are attended, exactly, their values read. The same tokens attended as Quest at the same budget,
    the sinks, the window and the unfinished page among them; `candidates` times the keys read, and one budget of
    values. On SmolLM2, where Quest's bound alone loses 14 points to full attention, the vote closes most of the
    gap (docs/KV-STORE.md). With the decode kernel (`+kernel`) a step runs as Quest's one compiled call
    (`core/quest_step.cpp`), equal up to float rounding and the order of equal votes."""

    name = "quest_vote"

    candidates: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.candidates, bool) or not isinstance(self.candidates, int) or self.candidates < 1:
            raise TokensieveError(f"policy 'quest_vote': option candidates={self.candidates!r} must be a whole "
                                  "number >= 1")

    def vote_candidates(self) -> int:
        return self.candidates

    def attend_pages(self, session, module, query: Tensor, layer, keeps: list[int]) -> Tensor:
        if self.compiled(session, query, layer):  # Quest's compiled step, with the vote inside
            return super().attend_pages(session, module, query, layer, keeps)
        q = grouped(query, layer.keys.shape[1])
        scores = self.page_scores(session, module, q, layer.stored, layer.span_keys)
        wide = self.pick_best(session, scores, [min(self.candidates * keep, layer.stored) for keep in keeps])
        keys = layer.gather_keys(wide.indices)
        logits = q @ keys.transpose(2, 3)  # [batch, kv_heads, group, candidates]
        if wide.hidden is not None:  # padding, or past a shorter sequence's candidates: no share of the vote
            logits = logits.masked_fill(wide.hidden[:, :, None], float("-inf"))
        ranked = vote(logits.flatten(1, 2), q.shape[2])
        guard = self.guard(session, scores, keeps).expand_as(scores) | scores.isinf()
        protect = guard.gather(2, wide.indices)  # the sinks, the window and the unfinished page stay
        chosen = pick(ranked, keeps, protect, None if wide.hidden is None else ~wide.hidden)
        rows = chosen.indices[..., None].expand(-1, -1, -1, keys.shape[-1])
        session.usage.attended(chosen.keeps)
        values = layer.gather_values(wide.indices.gather(2, chosen.indices))
        return sparse_attend(query, keys.gather(2, rows), values, module.scaling, chosen.bias(query.dtype))
