"""vLLM's scheduler, plus one step: when a request's prompt has been computed, free the blocks its hole hides.

The worker compacts the kept tokens into the first blocks in that same step (attention.py), so the freed
blocks may go to another request from the next step on. vLLM has no public call that frees a middle range;
`_remove_blocks_in_range` is the one its own sliding-window manager uses, which is why the plugin pins vLLM."""

from __future__ import annotations

from vllm.v1.core.sched.scheduler import Scheduler

from tokensieve.vllm.plan import Hole, parse, plan, server_default


class SieveScheduler(Scheduler):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.cache_config.enable_prefix_caching:
            raise SystemExit("tokensieve: start vLLM with --no-enable-prefix-caching: a compacted block must not "
                             "be shared with another request")
        if len(self.kv_cache_config.kv_cache_groups) != 1:
            raise SystemExit("tokensieve: the vLLM plugin supports models with one KV-cache group only")
        self.default = server_default()
        self.freed: dict[str, int] = {}  # request id -> its preemption count when its hole was freed

    def update_from_output(self, scheduler_output, model_runner_output):
        outputs = super().update_from_output(scheduler_output, model_runner_output)
        for req_id in scheduler_output.finished_req_ids:
            self.freed.pop(req_id, None)
        for req_id in scheduler_output.num_scheduled_tokens:
            request = self.requests.get(req_id)
            if request is None or request.is_finished():
                self.freed.pop(req_id, None)
                continue
            if request.num_computed_tokens < request.num_prompt_tokens:
                continue
            if self.freed.get(req_id) == request.num_preemptions:
                continue
            self.freed[req_id] = request.num_preemptions
            hole = self.hole(request)
            if hole is not None:
                for manager in self.kv_cache_manager.coordinator.single_type_managers:
                    manager._remove_blocks_in_range(req_id, hole.keep_blocks, hole.tail_block)
        return outputs

    def hole(self, request) -> Hole | None:
        rule = parse(request.sampling_params.extra_args if request.sampling_params else None, self.default)
        return plan(request.num_prompt_tokens, rule.budget, self.block_size) if rule.evicts else None
