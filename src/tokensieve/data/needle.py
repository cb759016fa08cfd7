"""Needle-in-a-haystack cases: a fact planted at a chosen depth of real prose, asked in completion style."""

from __future__ import annotations

from dataclasses import dataclass

from tokensieve.data.corpus import haystack

NEEDLES: tuple[tuple[str, str, str, str], ...] = (
    # (fact sentence, question, answer prefix, expected answer)
    ("The secret passkey for the blue door is 7294.", "What is the secret passkey for the blue door?",
     "The secret passkey for the blue door is", "7294"),
    ("The best thing to do in San Francisco is eat a sandwich in Dolores Park on a sunny day.",
     "What is the best thing to do in San Francisco?", "The best thing to do in San Francisco is", "sandwich"),
    ("Marta's favourite fruit is the mango.", "What is Marta's favourite fruit?",
     "Marta's favourite fruit is the", "mango"),
    ("The launch code for the submarine is 58213.", "What is the launch code for the submarine?",
     "The launch code for the submarine is", "58213"),
)


@dataclass(frozen=True)
class NeedleCase:
    context: str
    question: str
    answer_prefix: str
    expected: str
    tokens: int
    depth: float

    def prompt_suffix(self) -> str:
        return f"\n\nQuestion: {self.question}\nAnswer: {self.answer_prefix}"


def plant(text: str, fact: str, depth: float) -> str:
    """Insert `fact` at the sentence boundary nearest to `depth` (0 = start, 1 = end) of `text`."""
    target = int(len(text) * depth)
    cut = text.rfind(". ", 0, target)
    cut = 0 if cut < 0 or depth == 0 else cut + 2
    if depth >= 1:
        cut = len(text)
        return f"{text} {fact}"
    return f"{text[:cut]}{fact} {text[cut:]}"


def needle_case(tokenizer, tokens: int, depth: float, needle: int = 0, offset: int = 0) -> NeedleCase:
    fact, question, prefix, expected = NEEDLES[needle % len(NEEDLES)]
    context = plant(haystack(tokenizer, tokens, offset=offset), fact, depth)
    return NeedleCase(context, question, prefix, expected, tokens, depth)
