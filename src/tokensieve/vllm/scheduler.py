"""vLLM's scheduler, plus two steps: when a request's cache reaches a compaction point (its prompt's end, then
every `every` generated tokens), free the blocks its hole now hides; and never let one scheduled chunk run past
such a point, so a request recomputed after preemption is compacted exactly where it was the first time (a
selector's recomputed tokens go one at a time, as each chose its own pages).

The worker compacts the kept tokens into the first blocks in that same step (attention.py), so the freed
blocks may go to another request from the next step on. vLLM has no public call that frees a middle range;
`_remove_blocks_in_range` is the one its own sliding-window manager uses, and `_reserve_prefill_lookahead` is
where it trims a chunk, which is why the plugin pins vLLM."""

from __future__ import annotations

from vllm.platforms import current_platform
from vllm.v1.core.sched.scheduler import Scheduler

from tokensieve.vllm.plan import Hole, Rule, parse, plan, server_default


class SieveScheduler(Scheduler):
    def __init__(self, *args, **kwargs) -> None:
        if not current_platform.is_cpu():  # the hole-aware attention backend exists for CPU_ATTN only
            raise SystemExit(f"tokensieve: the vLLM plugin attends around freed blocks with vLLM's CPU attention "
                             f"backend only; on {current_platform.device_type} the kernel would still read them")
        super().__init__(*args, **kwargs)
        if self.cache_config.enable_prefix_caching:
            raise SystemExit("tokensieve: start vLLM with --no-enable-prefix-caching: a compacted block must not "
                             "be shared with another request")
        if len(self.kv_cache_config.kv_cache_groups) != 1:
            raise SystemExit("tokensieve: the vLLM plugin supports models with one KV-cache group only")
        self.default = server_default()
        self.rules: dict[str, Rule] = {}  # request id -> its options, parsed once
        self.holes: dict[str, Hole | None] = {}  # request id -> its hole, planned once
        self.freed: dict[str, tuple[int, int]] = {}  # request id -> (preemptions, first block after the hole)

    def update_from_output(self, scheduler_output, model_runner_output):
        outputs = super().update_from_output(scheduler_output, model_runner_output)
        for req_id in scheduler_output.finished_req_ids:
            self.forget(req_id)
        for req_id in scheduler_output.num_scheduled_tokens:
            request = self.requests.get(req_id)
            if request is None or request.is_finished():
                self.forget(req_id)
                continue
            hole = self.hole(request)
            if hole is None or not hole.compacted(request.num_computed_tokens):
                continue
            preemptions, freed_to = self.freed.get(req_id, (-1, 0))
            if preemptions != request.num_preemptions:  # first compaction, or the first after a recomputation
                freed_to = hole.keep_blocks
            tail = hole.tail_block_at(request.num_computed_tokens)
            if tail > freed_to:
                for manager in self.kv_cache_manager.coordinator.single_type_managers:
                    manager._remove_blocks_in_range(req_id, freed_to, tail)
            self.freed[req_id] = (request.num_preemptions, tail)
        return outputs

    def _reserve_prefill_lookahead(self, request, num_computed_tokens: int, num_new_tokens: int) -> int:
        num_new_tokens = super()._reserve_prefill_lookahead(request, num_computed_tokens, num_new_tokens)
        stop = self.next_stop(request, num_computed_tokens)
        return num_new_tokens if stop is None else min(num_new_tokens, stop - num_computed_tokens)

    def next_stop(self, request, computed: int) -> int | None:
        """The token count one chunk must not run past: the next compaction point; for a selector the prompt's
        end, then every token, since each of its decode steps attends pages of its own (so recomputed tokens
        after a preemption are recomputed one by one, as they were first computed). None: no limit."""
        hole = self.hole(request)
        if hole is not None:
            return hole.next_compaction(computed)
        if self.rule(request).selects:
            return max(computed + 1, request.num_prompt_tokens)
        return None

    def rule(self, request) -> Rule:
        if request.request_id not in self.rules:
            self.rules[request.request_id] = parse(
                request.sampling_params.extra_args if request.sampling_params else None, self.default)
        return self.rules[request.request_id]

    def hole(self, request) -> Hole | None:
        if request.request_id not in self.holes:
            rule = self.rule(request)
            self.holes[request.request_id] = plan(request.num_prompt_tokens, rule.budget, self.block_size,
                                                  every=rule.every) if rule.evicts else None
        return self.holes[request.request_id]

    def forget(self, req_id: str) -> None:
        self.holes.pop(req_id, None)
        self.rules.pop(req_id, None)
        self.freed.pop(req_id, None)
