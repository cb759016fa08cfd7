"""tokensieve's CPU kernels, compiled once per machine with torch's C++ extension builder (about 40 s, cached by
torch under ~/.cache/torch_extensions) for CPUs that torch reports as AVX2 or better:
- `attend` (decode_attention.cpp): dense attention of a one-token decode step, opt-in (`core.decode_kernel`);
- `dequantize_rows` and `gather_layer` (dequantize_rows.cpp): a selector's coded rows, or a quantized layer's
  selected slots (sinks, codes, newest rows), read in one pass, bit-identical to the torch paths they replace
  (`QuantizedRows.dequantize_rows`, `QuantizedLayer.gather`), so they are used wherever they build;
- `quest_step` (quest_step.cpp): Quest's whole decode step over one layer (pages ranked, slots chosen, read and
  attended), opt-in with the decode kernel (`sparse/quest.py`), and `code_page_bounds`: Quest's code pages as
  float bounds (`core/code_pages.py`), bit-identical to its torch path, used wherever it builds;
- `int8_linear` (int8_linear.cpp): one to sixteen float32 rows times int8 weight codes, opt-in with the decode
  kernel for `--weights int8` (`tokensieve.weights`).
The module's name carries a hash of every source and header, so a changed header rebuilds it too.

Hand-written because no library we can install offers either for torch 2.13 on CPU (docs/DECODE.md, KV-STORE.md).
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import torch

from tokensieve.errors import TokensieveError

SOURCES = [Path(__file__).with_name(name)
           for name in ("kernels_module.cpp", "decode_attention.cpp", "dequantize_rows.cpp", "quest_step.cpp",
                       "int8_linear.cpp")]
HEADERS = [Path(__file__).with_name(name) for name in ("decode_attention.h", "quant_rows.h", "simd.h")]
# -ffp-contract=off: a * b + c stays two roundings, as torch's elementwise kernels compute it
_FLAGS = ["-O3", "-mavx2", "-mfma", "-mf16c", "-fopenmp", "-ffp-contract=off"]


def unavailable() -> str | None:
    """Why the kernels cannot run on this machine, or None when they can."""
    capability = torch.backends.cpu.get_cpu_capability()
    if not capability.startswith("AVX2") and not capability.startswith("AVX512"):
        return f"tokensieve's CPU kernels need an AVX2 CPU; torch reports {capability}"
    return None


@functools.cache
def extension():
    """The compiled kernels (built on first call), or TokensieveError with one line saying why not."""
    reason = unavailable()
    if reason:
        raise TokensieveError(reason)
    from torch.utils import cpp_extension

    try:
        return cpp_extension.load(module_name(), [str(s) for s in SOURCES], extra_cflags=_FLAGS,
                                  extra_ldflags=["-fopenmp"])
    except (OSError, RuntimeError, ImportError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TokensieveError(f"tokensieve's CPU kernels could not be built ({first})") from None


def module_name() -> str:
    """The extension's name: torch rebuilds when a listed source changes, but not a header; the hash covers both."""
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in SOURCES + HEADERS)).hexdigest()[:10]
    return f"tokensieve_cpu_kernels_{digest}"


def unbuildable() -> str | None:
    """Why the kernels cannot be built or loaded here (builds them if they can be), or None."""
    try:
        extension()
    except TokensieveError as error:
        return str(error)
    return None


@functools.cache
def optional():
    """The compiled kernels, or None where they cannot be built or TOKENSIEVE_KERNELS=off (for paths whose torch
    fallback gives the same result, so a benchmark can time both)."""
    if os.environ.get("TOKENSIEVE_KERNELS") == "off":
        return None
    try:
        return extension()
    except TokensieveError:
        return None
