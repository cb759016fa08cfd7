"""The Python standard library's own source files: a second, code-domain haystack next to the essays.

Files come from `sysconfig.get_paths()["stdlib"]` in sorted relative-path order, without tests, IDLE, the
`encodings/` codec tables (machine-generated charmaps), `site-packages`, files over 200 KB and non-UTF-8 files.
The text therefore depends on the installed Python version (reproducible for one interpreter, not across them).
"""

from __future__ import annotations

import os
import random
import sysconfig
from functools import cache
from pathlib import Path

from tokensieve.errors import TokensieveError

MAX_BYTES = 200_000
SKIP_DIRS = frozenset({"test", "tests", "idlelib", "encodings", "site-packages", "dist-packages", "__pycache__"})


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


@cache
def stdlib_files() -> tuple[tuple[str, str], ...]:
    """(relative path, text) of every kept `.py` file, sorted by path (POSIX separators)."""
    root = stdlib_dir()
    found: list[tuple[str, str]] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)  # prune: never walk site-packages
        for name in files:
            path = Path(folder) / name
            if not name.endswith(".py") or path.stat().st_size > MAX_BYTES:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if text.strip():
                found.append((path.relative_to(root).as_posix(), text))
    if not found:
        raise TokensieveError(f"no Python standard library sources found in {root}")
    return tuple(sorted(found))


def file_block(rel: str, text: str) -> str:
    """One file as it appears in a haystack: a `# file: <relpath>` header line, then the text, ending in a newline."""
    return f"# file: {rel}\n{text if text.endswith(chr(10)) else text + chr(10)}"


def count(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False, verbose=False).input_ids)


def cut_lines(tokenizer, text: str, n_tokens: int) -> str:
    """The longest prefix of `text` made of whole lines that tokenizes to at most `n_tokens` tokens (about: a
    prefix may end a line or two early where tokens merge across line ends)."""
    ids = tokenizer(text, add_special_tokens=False, verbose=False).input_ids
    if len(ids) <= n_tokens:
        end = len(text)
    else:
        try:  # fast tokenizers: the character where the first token that does not fit starts
            offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                                verbose=False)["offset_mapping"]
            end = offsets[n_tokens][0]
        except (NotImplementedError, KeyError, TypeError):
            end = len(tokenizer.decode(ids[:n_tokens]))
    cut = text[: text.rfind("\n", 0, end + 1) + 1]
    while cut and count(tokenizer, cut) > n_tokens:  # rare: drop a line at a time
        cut = cut[: cut.rfind("\n", 0, len(cut) - 1) + 1]
    return cut


def stdlib_haystack(tokenizer, n_tokens: int, offset: int = 0) -> str:
    """About `n_tokens` tokens of consecutive files (sorted order, wrapping around) from file `offset`, each
    behind its `# file:` header, cut at a line end (never more than `n_tokens`)."""
    files = stdlib_files()
    blocks, total, i = [], 0, offset
    while total < n_tokens and i - offset < 4 * len(files):
        block = file_block(*files[i % len(files)])
        blocks.append(block)
        total += count(tokenizer, block)
        i += 1
    return cut_lines(tokenizer, "".join(blocks), n_tokens)


def stdlib_context(tokenizer, n_tokens: int, seed: int, min_lines: int = 20) -> str:
    """Whole real source files (at least `min_lines` lines each) in an order drawn from `random.Random(seed)`,
    concatenated behind `# file:` headers up to `n_tokens` tokens; the last file is trimmed at a line end."""
    files = [f for f in stdlib_files() if f[1].count("\n") >= min_lines]
    order = list(range(len(files)))
    random.Random(seed).shuffle(order)
    parts, total = [], 0
    for i in order:
        block = file_block(*files[i])
        size = count(tokenizer, block)
        if total + size > n_tokens:
            parts.append(cut_lines(tokenizer, block, n_tokens - total))
            break
        parts.append(block)
        total += size
    return cut_lines(tokenizer, "".join(parts), n_tokens)  # a no-op unless merges across files added tokens
