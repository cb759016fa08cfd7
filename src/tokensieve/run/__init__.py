"""One run of a model under a policy: the prompt (`prompt`), prefill-once-and-branch (`prefix`), the greedy loop
(`loop`) and what it returns (`result`, the `--json` contract). The model cache is `tokensieve.models.cached_load`."""

from tokensieve.run.loop import as_id_list, generate, resolve_policy, stored_token_counts
from tokensieve.run.prefix import Prefix, branchable, check_prefix, prefill
from tokensieve.run.prompt import Batch, completion_prompt, feed_prompt, forward_logits, validate_lengths
from tokensieve.run.result import Result, Stats

__all__ = ["Batch", "Prefix", "Result", "Stats", "as_id_list", "branchable", "check_prefix", "completion_prompt",
           "feed_prompt", "forward_logits", "generate", "prefill", "resolve_policy",
           "stored_token_counts", "validate_lengths"]
