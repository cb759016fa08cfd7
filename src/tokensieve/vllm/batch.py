"""Per-request options in and out of vLLM through its logits-processor interface: `validate_params` rejects bad
`vllm_xargs` with HTTP 400 at admission (the engine keeps serving), and `update_state` tells the worker which
row holds which request. It never changes a logit."""

from __future__ import annotations

import torch
from vllm.config import VllmConfig
from vllm.sampling_params import SamplingParams
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates

from tokensieve.vllm.plan import BadOptions, active, parse, plan, server_default
from tokensieve.vllm.rows import ROWS, RowState


class SieveRequests(LogitsProcessor):
    @classmethod
    def validate_params(cls, sampling_params: SamplingParams) -> None:
        try:
            parse(sampling_params.extra_args, server_default())
        except BadOptions as err:
            raise ValueError(f"tokensieve: {err}") from None

    def __init__(self, vllm_config: VllmConfig, device: torch.device, is_pin_memory: bool) -> None:
        self.active = active(vllm_config.scheduler_config.scheduler_cls)
        self.default = server_default()
        self.block_size = vllm_config.cache_config.block_size

    def is_argmax_invariant(self) -> bool:
        return True

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        if self.active:
            process_dict_updates(ROWS, batch_update, self._state)

    def _state(self, params: SamplingParams, prompt: list[int] | None, _output: list[int]) -> RowState | None:
        rule = parse(params.extra_args, self.default)
        if rule.selects:
            return RowState(rule, None)
        hole = plan(len(prompt), rule.budget, self.block_size, every=rule.every) if rule.evicts and prompt else None
        return RowState(rule, hole) if hole else None  # no hole: the row runs as plain vLLM

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        return logits
