"""A peer tool in a virtualenv of its own: peers pin transformers versions tokensieve cannot share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tokensieve import models
from tokensieve.errors import TokensieveError

TORCH = "torch==2.13.0"  # first, from local disk: a bare torch would pull a multi-GB CUDA build


@dataclass(frozen=True)
class PeerVenv:
    package: str  # the distribution whose presence marks the venv ready (e.g. "kvpress")
    folder: str  # under <cache>/peers/
    env_var: str  # overrides the location
    requirements: tuple[tuple[str, ...], ...]  # pip install groups, in order, after torch
    command: str = "tokensieve peers setup"  # what a user runs to create it

    def dir(self) -> Path:
        return Path(os.environ.get(self.env_var) or models.cache_root() / "peers" / self.folder)

    def python(self) -> Path:
        return self.dir() / "bin" / "python"

    def available(self) -> bool:
        """Installed, checked on disk without starting an interpreter."""
        return self.python().exists() and any(self.dir().glob(f"lib/python*/site-packages/{self.package}-*.dist-info"))

    def setup(self, echo=print) -> float:
        """Create or complete the venv; returns the seconds it took."""
        start = time.perf_counter()
        steps = [[sys.executable, "-m", "venv", str(self.dir())]] if not self.python().exists() else []
        pip = [str(self.python()), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        steps += [pip + [TORCH]] + [pip + list(group) for group in self.requirements]
        for cmd in steps:
            echo(" ".join(cmd))
            if subprocess.run(cmd).returncode != 0:
                raise TokensieveError(f"{self.package} setup failed at: {' '.join(cmd)}")
        return time.perf_counter() - start


class PeerFailed(RuntimeError):
    """A peer could not produce this row or cell (it raised, or its worker died): recorded, never fatal."""


class JsonLinesWorker:
    """A long-lived peer process in its own venv, one JSON request and one JSON answer per line."""

    def __init__(self, name: str, venv: PeerVenv, script: Path, python: Path | None = None) -> None:
        self.name = name
        python = python or venv.python()
        if not Path(python).exists():
            raise PeerFailed(f"{name} venv not found at {venv.dir()}: run `{venv.command}`")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1", "TOKENIZERS_PARALLELISM": "false"}
        self.proc = subprocess.Popen([str(python), str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env)

    def call(self, request: dict) -> dict:
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError) as err:
            raise PeerFailed(f"{self.name} worker died: {err}") from None
        if not line:
            raise PeerFailed(f"{self.name} worker died (exit code {self.proc.wait()})")
        try:
            answer = json.loads(line)
            ok = answer.pop("ok")
        except (ValueError, AttributeError, KeyError):  # something in the peer wrote to stdout: its malfunction
            raise PeerFailed(f"{self.name} worker answered something other than JSON: {line[:200]!r}") from None
        if not ok:
            raise PeerFailed(answer.get("error", "the peer failed without a message"))
        return answer

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.alive():
            try:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
