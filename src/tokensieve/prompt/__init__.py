"""Prompt compression before the model: surprisal (LLMLingua, arXiv 2310.05736) and attribution
(FrugalPrompt; attention rollout, gradient x input, leave-one-out and ReAGent-style perturbation), with
exact token ratios measured by the target model's tokenizer."""

from tokensieve.prompt.api import METHODS, Compressed, compress

__all__ = ["METHODS", "Compressed", "compress"]
