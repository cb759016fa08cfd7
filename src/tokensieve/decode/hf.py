"""Tree decoding behind transformers' own `model.generate`, under any tokensieve policy:

    with tokensieve.apply(model, tokensieve.make("snapkv", budget=0.25)):
        out = model.generate(ids, max_new_tokens=64, custom_generate=tokensieve.TreeDecoding("recycling"))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from tokensieve.core.cache import SieveCache
from tokensieve.core.hooks import SESSION_ATTR
from tokensieve.decode.loop import DecodeOptions, check_rows, decode_tree, exact_rows, make_drafter
from tokensieve.decode.verify import Verifier
from tokensieve.errors import TokensieveError


@dataclass
class TreeDecoding:
    """A `custom_generate` callable: greedy decoding verified as draft trees (lossless), one sequence. `last`
    holds the run of the latest call (steps, tokens per step)."""

    decode: str = "recycling"
    options: DecodeOptions = field(default_factory=DecodeOptions)

    def __post_init__(self) -> None:
        self.last = None

    def __call__(self, model, input_ids, logits_processor=None, stopping_criteria=None, generation_config=None,
                 synced_gpus=False, streamer=None, **model_kwargs):
        session = getattr(model, SESSION_ATTR, None)
        if session is None:
            raise TokensieveError("TreeDecoding runs inside tokensieve.apply(model, policy)")
        if input_ids.shape[0] != 1:
            raise TokensieveError("tree decoding generates one sequence at a time")
        if generation_config is not None and generation_config.do_sample:
            raise TokensieveError("tree decoding is greedy (lossless); set do_sample=False")
        rows = exact_rows(model, session.kernels)
        mask = model_kwargs.get("attention_mask")
        if mask is not None and not bool(mask.all()):
            raise TokensieveError("tree decoding takes an unpadded prompt")
        config = generation_config or model.generation_config
        max_new = config.max_new_tokens or max(1, (config.max_length or 20) - input_ids.shape[1])
        eos = config.eos_token_id
        eos = set() if eos is None else {int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}
        cache = SieveCache(model.config)
        verifier = Verifier(model, cache, session)
        drafter = make_drafter(self.decode, model, verifier, self.options)
        check_rows(drafter, rows)
        session.decode_room = max_new + drafter.max_nodes
        prompt = input_ids[0].tolist()
        with torch.inference_mode():
            logits = model(input_ids=input_ids, cache=cache, use_cache=True, logits_to_keep=1).logits
            if streamer is not None:
                streamer.put(input_ids.cpu())

            def finished(generated: list[int], token: int) -> bool:
                if streamer is not None:
                    streamer.put(torch.tensor([token]))
                if token in eos or len(generated) >= max_new:
                    return True
                if stopping_criteria:
                    sequence = torch.tensor([prompt + generated], device=input_ids.device)
                    return bool(stopping_criteria(sequence, None).all())
                return False

            self.last = decode_tree(verifier, drafter, prompt, int(logits[0, -1].argmax()), max_new, finished)
        if streamer is not None:
            streamer.end()
        new = torch.tensor([self.last.generated], dtype=input_ids.dtype, device=input_ids.device)
        return torch.cat([input_ids, new], 1)
