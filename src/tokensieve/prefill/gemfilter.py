from __future__ import annotations

from dataclasses import dataclass

import torch

from tokensieve.errors import TokensieveError
from tokensieve.prefill.skip import ProbeDone, SkipState, Stage, TokenSkip, decoder_layers, layer_index, select


@dataclass
class GemFilter(TokenSkip):
    """GemFilter (Shi et al., "Discovering the Gems in Early Layers", arXiv 2409.17422): run the prompt through
    the first layers only, up to the filter layer, whose attention from the prompt's last `probe` queries picks
    the best `budget` share of the tokens (sinks and those last tokens included); then prefill the whole model on
    the selected tokens alone. Every layer then stores only them.

    Departure: the kept tokens keep their true RoPE positions (the paper re-indexes them 0..k-1), so decoding
    continues at the true position, as for every other policy here.

    layer: the filter layer (a fraction of the depth, or a layer number); the probe forward stops there."""

    name = "gemfilter"

    layer: float = 0.5

    def stages(self, n_layers: int) -> list[Stage]:
        return []  # the full forward keeps what the probe forward selected

    def filter_prompt(self, session, model, args: tuple, kwargs: dict):
        """The model's forward pre-hook: probe the prompt, then let the forward run on the selected tokens."""
        kwargs = dict(kwargs)
        ids = args[0] if args else kwargs.get("input_ids")
        if ids is None:
            raise TokensieveError("gemfilter needs input_ids (it re-feeds the selected tokens)")
        n = ids.shape[1]
        if n == 1:
            return None
        cache = kwargs.get("cache") if kwargs.get("cache") is not None else kwargs.get("past_key_values")
        if cache is not None and cache.get_seq_length() > 0:
            raise TokensieveError("gemfilter selects from the whole prompt in one forward: no chunked prefill and "
                                  "no question appended after the context")
        mask = kwargs.get("attention_mask")
        if mask is not None and not bool(mask.all()):
            raise TokensieveError("gemfilter skips tokens of unpadded prompts only (one prompt, or equal lengths)")
        positions = kwargs.get("position_ids")
        if positions is None:
            positions = torch.arange(n, device=ids.device)[None].expand(ids.shape[0], -1)
        layers = len(session.prepared["filter_layers"])
        stage = Stage(probe=layer_index(self.layer, layers), layer=layer_index(self.layer, layers),
                      keep=self.budget.value)
        session.scratch["skip_probe"] = stage
        try:
            model.get_decoder()(input_ids=ids, position_ids=positions, use_cache=False)
            raise TokensieveError("the gemfilter probe forward did not reach its filter layer")
        except ProbeDone as done:
            scores = done.scores
        finally:
            del session.scratch["skip_probe"]
        state = SkipState(n, scores=scores)
        local = select(state, self, stage, n, first=True)
        if local is None:
            return None
        session.prepared["gemfilter_kept"] = local  # the selection (`prepared` survives the cache's bind)
        session.prepared["gemfilter_pending"] = (n, local)  # the forward's first layer picks it up
        kwargs.pop("input_ids", None)
        kwargs["input_ids"] = ids.gather(1, local)
        kwargs["position_ids"] = positions.gather(1, local)
        if mask is not None:
            kwargs["attention_mask"] = mask.gather(1, local)
        return (), kwargs

    def forward_state(self, session, carried: int) -> SkipState | None:
        """The state of a forward whose inputs are the selection: its layers store them at true positions."""
        pending = session.prepared.pop("gemfilter_pending", None)
        if pending is None:
            return None
        tokens, local = pending
        return SkipState(tokens, index=local, filtered=True)

    def prepare(self, session, model) -> None:
        super().prepare(session, model)
        session.prepared["filter_layers"] = decoder_layers(model)
