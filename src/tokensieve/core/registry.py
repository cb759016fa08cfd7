"""One registry type for every kind of method tokensieve builds by name: KV policies and selectors
(`tokensieve.methods`), encoder methods, prompt compressors and drafters. Each package keeps one table of this
type; `tokensieve.catalog` gathers them all."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Generic, TypeVar

from tokensieve.errors import TokensieveError

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    """Names to builders (a class, or a factory) of one `kind`. `require` is the lookup with one clear error line;
    `builtin` names (such as a method-less "none") are shown among the choices without being entries."""

    def __init__(self, kind: str, entries: Mapping[str, T], *, builtin: Iterable[str] = (),
                 sort: bool = False) -> None:
        super().__init__(entries)
        self.kind, self.builtin, self.sort = kind, tuple(builtin), sort

    def names(self) -> tuple[str, ...]:
        """The builtin names, then the entries (sorted, or in the order registered)."""
        return (*self.builtin, *(sorted(self) if self.sort else self))

    def require(self, name: str) -> T:
        if name not in self:
            raise TokensieveError(f"unknown {self.kind} '{name}': choose from {', '.join(self.names())}")
        return self[name]
