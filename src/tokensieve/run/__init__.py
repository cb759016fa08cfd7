"""One run of a model under a policy: what it settles first (`setup`: options, policy, model, encoded prompts), the
prompt (`prompt`), prefill-once-and-branch (`prefix`), the greedy loop (`loop`) and what it returns (`result`, the
`--json` contract). The model cache is `tokensieve.models.cached_load`."""

from tokensieve.run.loop import generate, stored_token_counts
from tokensieve.run.prefix import Prefix, branchable, check_prefix, prefill
from tokensieve.run.prompt import Batch, completion_prompt, feed_prompt, forward_logits, validate_lengths
from tokensieve.run.result import Result, Stats
from tokensieve.run.setup import RunOptions, Setup, as_id_list, resolve_policy, set_up

__all__ = ["Batch", "Prefix", "Result", "RunOptions", "Setup", "Stats", "as_id_list", "branchable", "check_prefix",
           "completion_prompt", "feed_prompt", "forward_logits", "generate", "prefill", "resolve_policy", "set_up",
           "stored_token_counts", "validate_lengths"]
