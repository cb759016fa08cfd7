"""Keep stored cells valid across a refactor that changes sources but no behaviour.

    git worktree add /tmp/before HEAD        # the tree before the refactor
    (cd /tmp/before && PYTHONPATH=src python -m tokensieve.bench.versions dump /tmp/before.json)
    python -m tokensieve.bench.versions alias /tmp/before.json   # in the refactored tree: prints the new entries

`dump` writes the code version of every method string that a suite or the registry names; `alias` prints, for each
whose raw version changed, the `version_aliases.ALIASES` entry that maps it back. Run the tests before adding them:
an alias claims that nothing a cell measures has changed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tokensieve.bench import cell, suites


def method_strings() -> list[str | None]:
    """Every method of every suite's parts (kvpress peers included) and of the registry, and None (all methods)."""
    from tokensieve.methods import REGISTRY

    names: set[str] = set(REGISTRY)
    for name in suites.SUITES:
        for part in suites.suite(name).parts:
            names.update(part.methods)
            names.update(part.peers or ())
    return [None, *sorted(names)]


def versions(raw: bool) -> dict[str, str]:
    """Method string ("<None>" for None) -> its code version, raw or as cell keys carry it."""
    version = cell.raw_version if raw else cell.code_version
    return {str(m) if m else "<None>": version(m) for m in method_strings()}


def aliases(before: dict[str, str]) -> dict[str, str]:
    """New raw version -> the version `before` recorded, for every method whose version changed."""
    found: dict[str, str] = {}
    for method, raw in versions(raw=True).items():
        old = before.get(method)
        if old is None or old == cell.ALIASES.get(raw, raw):
            continue
        if found.get(raw, old) != old:
            raise SystemExit(f"{method}: raw version {raw} would stand for both {found[raw]} and {old}")
        found[raw] = old
    return found


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] not in ("dump", "alias"):
        raise SystemExit("usage: python -m tokensieve.bench.versions dump OUT.json | alias BEFORE.json")
    command, path = argv
    if command == "dump":
        Path(path).write_text(json.dumps(versions(raw=False), indent=1, sort_keys=True) + "\n")
        return
    for raw, old in sorted(aliases(json.loads(Path(path).read_text())).items()):
        print(f'    "{raw}": "{old}",')


if __name__ == "__main__":
    main(sys.argv[1:])
