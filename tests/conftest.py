"""Shared fixtures and the test tiers. Real models load once per session from the packaged GGUF (cached safetensors
copy).

Tiers (see README): the default run skips `slow` (sweeps, SIGKILL-resume runs, multi-process and load runs);
`pytest -m "slow or peers"` runs those plus every test that needs or depends on a peer venv or Chromium.
`@pytest.mark.peers("kvpress")` skips, with the reason, where that peer is absent; `@pytest.mark.peers()` marks a
test whose behaviour changes once the peers exist, so that `.ci/run` runs it again with them."""

from __future__ import annotations

import os
import shutil

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.manual_seed(0)


def _peer_missing(name: str) -> str | None:
    """Why the named peer cannot run here, or None when it can."""
    if name == "kvpress":
        from tokensieve.bench.peers import kvpress
        return None if kvpress.available() else (f"kvpress venv absent at {kvpress.venv_dir()} "
                                                  "(`tokensieve peers setup`)")
    if name == "llmlingua":
        from tokensieve.bench.peers import llmlingua

        return None if llmlingua.available() else "llmlingua venv absent (`tokensieve peers setup-llmlingua`)"
    if name == "vllm":
        from tokensieve.bench.peers import vllm_engine

        return None if vllm_engine.available() else (f"vLLM venv absent at {vllm_engine.venv_dir()} "
                                                      "(`tokensieve vllm setup`)")
    if name == "chromium":
        found = shutil.which("chromium") or shutil.which("chromium-browser")
        return None if found else "Debian chromium is not installed (apt-get install -y chromium)"
    raise ValueError(f"unknown peer '{name}' in @pytest.mark.peers")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("peers"):
        for name in mark.args:
            reason = _peer_missing(name)
            if reason:
                pytest.skip(reason)


@pytest.fixture(scope="session")
def smollm2():
    from tokensieve.models import cached_load

    return cached_load("smollm2-135m")


@pytest.fixture(scope="session")
def gemma3():
    from tokensieve.models import cached_load

    return cached_load("gemma3-270m")


@pytest.fixture(scope="session")
def tiny_llama():
    """A tiny randomly initialised Llama for fast unit tests (never a stand-in for the real-model tests)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def qwen05():
    from tokensieve.models import cached_load

    return cached_load("qwen2.5-coder-0.5b")
