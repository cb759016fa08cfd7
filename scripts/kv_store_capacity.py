"""Requests a fixed KV pool admits at once, per method, from the engine's own byte model (`serve/pool.Footprint`,
what `Engine` admits by): a request reserves its full-precision prompt while it goes in, then what its cache keeps
(codes for int4). k requests fit when k - 1 kept caches and one prompt peak fit, as the slow test
`test_the_server_admits_int4_requests_by_their_coded_bytes_on_a_real_model` checks on a real engine. The table in
docs/KV-STORE.md comes from:

    .venv/bin/python scripts/kv_store_capacity.py smollm2-135m 4096 128
"""

from __future__ import annotations

import sys

from tokensieve.bench.serving import prompts_for
from tokensieve.methods import make
from tokensieve.models import cached_load
from tokensieve.serve.pool import Footprint

METHODS = (("full", "full", 1.0, "fp"), ("full/int4", "full", 1.0, "int4"),
           ("quest@0.125/int4", "quest", 0.125, "int4"), ("quest_vote@0.125/int4", "quest_vote", 0.125, "int4"),
           ("snapkv@0.125", "snapkv", 0.125, "fp"))


def main(model: str, tokens: int, new: int) -> None:
    net, tok = cached_load(model)
    prompt = len(tok(prompts_for(tok, tokens, 1)[0]).input_ids)  # the bench serve prompt, question included
    footprint = Footprint.of(net)
    full = footprint.decode_bytes(prompt, new, make("full"))
    print(f"{model}, {prompt}-token prompts, {new} new tokens; a full-precision request holds {full / 2**20:.1f} MiB")
    print("| method | MiB kept | " + " | ".join(f"pool of {k} full" for k in (2, 4, 8)) + " |")
    print("|---|---|---|---|---|")
    for label, name, budget, kv_dtype in METHODS:
        policy = make(name, budget)
        peak = footprint.prefill_bytes(prompt, new, policy, whole=True, kv_dtype=kv_dtype)
        kept = footprint.decode_bytes(prompt, new, policy, kv_dtype)
        cells = []
        for k in (2, 4, 8):
            pool = k * full
            count = (pool - max(peak, kept)) // kept + 1 if pool >= max(peak, kept) else 0
            cells.append(f"{count} ({count / k:.1f}x)")
        print(f"| {label} | {kept / 2**20:.1f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
