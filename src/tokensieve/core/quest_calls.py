"""Quest's compiled decode steps (`core/quest_step.cpp`) planned first and run together.

The server's packed step attends every sequence of a layer in turn. At 8 × 4k on SmolLM2 a sequence's step over a
layer is one compiled call over 3 KV heads, spread over 2 threads, so one thread waits a third of each call. A
policy that can give its step as such a call (`DynamicPolicy.quest_call`) hands over its arguments instead, and
the packed attention runs every sequence's call for the layer at once (`run_quest_calls`): 24 KV heads shared by
the threads, each output equal to that of the call alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from tokensieve.core.kernels import extension


@dataclass(frozen=True)
class QuestCall:
    """One sequence's decode step over one layer: the arguments of the compiled `quest_step`, in its order."""

    arguments: tuple

    def run(self) -> Tensor:
        """The step alone: the attention output [1, 1, heads, head_dim]."""
        return extension().quest_step(*self.arguments)


def run_quest_calls(calls: list[QuestCall]) -> list[Tensor]:
    """Every call's output, in order, from one compiled call that shares all their KV heads among the threads."""
    return extension().quest_steps([call.arguments for call in calls]) if calls else []
