"""Finished cells as rows in SQLite, keyed by a hash of their inputs and the code version.

A row is written in one transaction only after its cell has finished, so a sweep killed at any instant
(even SIGKILL) leaves only whole rows behind; rerunning skips them. A stored ok row is never overwritten; a
stored failed row is replaced by a later row of the same key (a retry, `bench --retry-failed`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from tokensieve.errors import TokensieveError

SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    key TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    model TEXT NOT NULL,
    task TEXT NOT NULL,
    case_id TEXT NOT NULL,
    method TEXT NOT NULL,
    budget REAL NOT NULL,
    status TEXT NOT NULL,
    quality REAL,
    metrics TEXT NOT NULL,
    created REAL NOT NULL DEFAULT (julianday('now'))
)
"""
COLUMNS = ("key", "version", "model", "task", "case_id", "method", "budget", "status", "quality", "metrics")

INSERT = (f"INSERT INTO cells ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
          "ON CONFLICT(key) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
          + ", created = julianday('now') WHERE cells.status != 'ok'")
SELECT = f"SELECT {', '.join(COLUMNS)}, created FROM cells ORDER BY model, task, case_id, method, budget"


def cell_key(inputs: dict, version: str) -> str:
    blob = json.dumps({"inputs": inputs, "version": version}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=60)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(SCHEMA)
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self.db.commit()
        except (sqlite3.Error, OSError) as err:
            raise TokensieveError(f"cannot open the results database {self.path}: {err}") from None

    def done(self, include_failed: bool = True) -> set[str]:
        """Keys of the stored rows; without `include_failed`, only of those that succeeded."""
        where = "" if include_failed else " WHERE status = 'ok'"
        return {row[0] for row in self.db.execute("SELECT key FROM cells" + where)}

    def put(self, row: dict) -> None:
        values = [row[c] if c != "metrics" else json.dumps(row[c], sort_keys=True) for c in COLUMNS]
        with self.db:
            self.db.execute(INSERT, values)

    def rows(self, keys: Iterable[str] | None = None) -> list[dict]:
        cursor = self.db.execute(SELECT)
        wanted = set(keys) if keys is not None else None
        out = []
        for values in cursor:
            row = dict(zip((*COLUMNS, "created"), values, strict=True))
            if wanted is not None and row["key"] not in wanted:
                continue
            row["metrics"] = json.loads(row["metrics"])
            out.append(row)
        return out

    def rekey(self, moves: Iterable[tuple[str, str, str]], note: tuple[str, str]) -> None:
        """Move rows to new keys, (old key, new key, new version) each, and record `note` (a meta name and value),
        in one transaction: for cells a code change could not alter (scripts/carry_cells.py)."""
        with self.db:
            self.db.executemany("UPDATE cells SET key = ?, version = ? WHERE key = ?",
                                [(new, version, old) for old, new, version in moves])
            self.db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", note)

    def set_meta(self, name: str, value: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    def meta(self, name: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def add_command(self, command: str) -> None:
        """Record a sweep command that finished its grid: `command` is the latest, `commands` every distinct one in
        order (a suite run part by part, or sharded by length, is several)."""
        done = self.commands()
        if command not in done:
            self.set_meta("commands", "\n".join([*done, command]))
        self.set_meta("command", command)

    def commands(self) -> list[str]:
        listed = self.meta("commands")
        if listed:
            return listed.split("\n")
        last = self.meta("command")
        return [last] if last else []

    def close(self) -> None:
        self.db.close()
