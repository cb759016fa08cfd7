"""The errors a user meets: the CLI prints each as one line and exits with its `exit_code`.

A `TokensieveError` is a mistake in the input (exit 2); a `ResourceError` is the machine running out of
something, such as memory, while the input was fine (exit 1).
"""

from __future__ import annotations

import sys


class TokensieveError(ValueError):
    """Bad input or an unsupported setting, explained in one line."""

    exit_code = 2


class ResourceError(TokensieveError):
    """Valid input that this machine could not run (out of memory), explained in one line."""

    exit_code = 1


def is_out_of_memory(err: BaseException) -> bool:
    """MemoryError, torch.OutOfMemoryError, or a RuntimeError whose message says out of memory (older torch
    builds and some backends raise a bare RuntimeError)."""
    if isinstance(err, MemoryError):
        return True
    torch = sys.modules.get("torch")  # never import torch just to classify an error
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    if oom is not None and isinstance(err, oom):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def out_of_memory(err: BaseException, doing: str) -> ResourceError:
    """The one-line ResourceError for an out-of-memory `err` raised while `doing` something."""
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return ResourceError(f"out of memory {doing}: {first}")
