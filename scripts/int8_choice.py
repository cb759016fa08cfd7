"""Why `--weights int8` is weight-only (docs/WEIGHTS.md): torch's dynamic int8 quantization (fbgemm, int8 activations,
one scale per product) against tokensieve's weight-only `Int8Linear`, on one model. For each: how often it picks fp32's
next token over the first 400 tokens of an essay (teacher-forced, one forward), the relative L2 error of those
logits, and plain greedy decode speed over fp32's (32 tokens, medians of 3 interleaved runs).

    .venv/bin/python scripts/int8_choice.py MODEL
"""

from __future__ import annotations

import copy
import statistics
import sys
import time
import warnings

import torch
from torch import nn

from tokensieve.data.corpus import haystack
from tokensieve.models import load
from tokensieve.weights import quantize_linears


def main(model_name: str) -> None:
    model, tokenizer = load(model_name)
    ids = tokenizer(haystack(tokenizer, 400), return_tensors="pt").input_ids[:, :400]
    with warnings.catch_warnings():  # torch.ao's dynamic quantization is deprecated in favour of torchao
        warnings.simplefilter("ignore")
        dynamic = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {
            nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}, torch.qint8)
    weight_only = copy.deepcopy(model)
    quantize_linears(weight_only)
    variants = {"fp32": model, "dynamic int8": dynamic, "weight-only int8": weight_only}
    with torch.inference_mode():
        reference = model(ids).logits[0]
        for name, net in list(variants.items())[1:]:
            logits = net(ids).logits[0]
            agree = float((logits.argmax(-1) == reference.argmax(-1)).float().mean())
            error = float((logits - reference).norm() / reference.norm())
            print(f"{model_name} {name}: picks fp32's next token on {agree:.1%} of 400, logit error {error:.1%}")
        prompt = ids[:, :40]
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(4):  # the first round warms up
            for name, net in variants.items():
                start = time.perf_counter()
                net.generate(prompt, max_new_tokens=32, min_new_tokens=32, do_sample=False)
                seconds[name].append(time.perf_counter() - start)
    base = statistics.median(seconds["fp32"][1:])
    for name in list(variants)[1:]:
        print(f"{model_name} {name}: greedy {base / statistics.median(seconds[name][1:]):.2f}x fp32")


if __name__ == "__main__":
    main(sys.argv[1])
