"""tokensieve's KV policies inside vLLM (issue 31): a plugin that evicts after prefill and frees paged blocks.

It runs in vLLM's own venv (`tokensieve vllm setup`), so these modules import only torch, vLLM and
`tokensieve.core.select`; `plan` is pure Python and is shared by vLLM's scheduler and its worker, which never
message each other: both derive the same hole from (prompt length, budget, block size). docs/VLLM-PLUGIN.md."""
