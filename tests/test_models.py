"""The model zoo without real weights: conversion is safe under concurrency; out of memory is not bad input."""

from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from tokensieve import models
from tokensieve.errors import ResourceError, TokensieveError

NAME = "smollm2-135m"


class FakeConversion:
    """Stands in for the GGUF conversion: slow, writes its files one by one, and logs each run to `log`."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.running = 0
        self.most_at_once = 0
        self.guard = threading.Lock()

    def __call__(self, spec: models.PackagedModel, dest: Path) -> None:
        with self.guard:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        with self.log.open("a") as f:
            f.write(f"{dest}\n")
        (dest / "model.safetensors").write_bytes(b"w" * 4096)
        time.sleep(0.3)  # a window in which an unlocked second converter would start too
        (dest / "config.json").write_text("{}")
        with self.guard:
            self.running -= 1


@pytest.fixture
def fake_cache(tmp_path, monkeypatch) -> FakeConversion:
    monkeypatch.setenv("TOKENSIEVE_CACHE", str(tmp_path / "cache"))
    fake = FakeConversion(tmp_path / "conversions.log")
    monkeypatch.setattr(models, "_convert", fake)
    return fake


def _conversions(fake: FakeConversion) -> list[str]:
    return fake.log.read_text().splitlines() if fake.log.exists() else []


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name not in (out.name, out.name + ".lock"))


def test_concurrent_threads_convert_once_and_all_get_the_finished_copy(fake_cache):
    out = models.converted_dir(NAME)
    seen_incomplete: list[str] = []
    stop = threading.Event()

    def watch() -> None:  # the published directory must never be a half-written copy
        while not stop.is_set():
            if out.exists() and not (out / "model.safetensors").exists():
                seen_incomplete.append("weights missing")
            time.sleep(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            paths = list(pool.map(lambda _: models.resolve(NAME), range(4)))
    finally:
        stop.set()
        watcher.join()
    assert paths == [out] * 4 and (out / "config.json").exists()
    conversions = _conversions(fake_cache)
    assert len(conversions) == 1 and fake_cache.most_at_once == 1
    assert Path(conversions[0]) != out and Path(conversions[0]).parent == out.parent  # renamed into place
    assert seen_incomplete == [] and _leftovers(out) == []


def _resolve_in_child(_: int) -> str:
    return str(models.resolve(NAME))


def test_concurrent_processes_convert_once(fake_cache):
    context = multiprocessing.get_context("fork")  # children inherit the fake conversion
    with context.Pool(2) as pool:
        paths = pool.map(_resolve_in_child, range(2))
    out = models.converted_dir(NAME)
    assert paths == [str(out)] * 2 and len(_conversions(fake_cache)) == 1 and _leftovers(out) == []


def test_a_killed_conversion_leaves_nothing_that_is_loaded_or_kept(fake_cache):
    out = models.converted_dir(NAME)
    out.mkdir(parents=True)  # an incomplete copy (no config.json) and a killed run's temporary dir
    stale = out.parent / f".{NAME}.x1y2.partial"
    stale.mkdir()
    assert models.resolve(NAME) == out and (out / "config.json").exists()
    assert len(_conversions(fake_cache)) == 1 and _leftovers(out) == []
    assert models.resolve(NAME) == out and len(_conversions(fake_cache)) == 1  # ready: no second conversion


@pytest.fixture
def model_dir(tmp_path) -> Path:
    from transformers import LlamaConfig

    LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                architectures=["LlamaForCausalLM"]).save_pretrained(tmp_path)
    return tmp_path


OOM = [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"), MemoryError(),
       RuntimeError("DefaultCPUAllocator: not enough memory: out of memory")]


@pytest.mark.parametrize("error", OOM, ids=lambda e: type(e).__name__)
def test_out_of_memory_while_loading_is_a_resource_error(model_dir, monkeypatch, error):
    from transformers import AutoModelForCausalLM

    def from_pretrained(*args, **kwargs):
        raise error

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", from_pretrained)
    with pytest.raises(ResourceError, match="^out of memory loading ") as caught:
        models.load(str(model_dir))
    assert caught.value.exit_code == 1 and "\n" not in str(caught.value)


def test_bad_weights_stay_a_user_error(model_dir, monkeypatch):
    from transformers import AutoModelForCausalLM

    def from_pretrained(*args, **kwargs):
        raise RuntimeError("Error(s) in loading state_dict for LlamaForCausalLM: size mismatch")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", from_pretrained)
    with pytest.raises(TokensieveError, match="cannot load") as caught:
        models.load(str(model_dir))
    assert not isinstance(caught.value, ResourceError) and caught.value.exit_code == 2
