"""Shared fixtures. Real models load once per session from the packaged GGUF (cached safetensors copy)."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.manual_seed(0)


@pytest.fixture(scope="session")
def smollm2():
    from tokensieve.generation import cached_load

    return cached_load("smollm2-135m")


@pytest.fixture(scope="session")
def gemma3():
    from tokensieve.generation import cached_load

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
    from tokensieve.generation import cached_load

    return cached_load("qwen2.5-coder-0.5b")
