"""The server's step with prepacked oneDNN linears (`Engine(packed_gemm=True)`, `serve --packed-gemm`, the bench's
`+gemm` methods): three or more rows take oneDNN, so a full batch's decode step and every prompt piece do; the
tokens stay those of the plain step on a real model."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from tokensieve.bench.serving import Method
from tokensieve.cli import app
from tokensieve.core import gemm
from tokensieve.data.corpus import haystack
from tokensieve.errors import TokensieveError

PRODUCT = gemm.product  # the real oneDNN product, which the spy below calls

def test_a_served_method_takes_each_engine_suffix_once_and_labels_them_in_one_order():
    both = Method.parse("snapkv:0.125+gemm+kernel")
    assert (both.policy, both.budget, both.decode_kernel, both.packed_gemm) == ("snapkv", 0.125, True, True)
    assert both.label == "snapkv@0.125+kernel+gemm" and Method.parse("full+kernel+gemm").label == "full+kernel+gemm"
    assert Method.parse("quest@int4:0.125+gemm").label == "quest@0.125/int4+gemm"
    assert not Method.parse("full").engine_options and Method.parse("full+gemm").engine_options
    for bad in ("full+gemm+gemm", "full+turbo", "full+", "full+kernel+fast"):
        with pytest.raises(TokensieveError, match="suffixes"):
            Method.parse(bad)


def test_bench_serve_and_serve_refuse_what_packed_linears_cannot_do():
    for args in (["bench", "serve", "--methods", "full+gemm", "--parts", "capacity"],
                 ["bench", "serve", "--methods", "full+gemm", "--engine", "vllm"],
                 ["serve", "--packed-gemm", "--weights", "bf16"]):
        done = CliRunner().invoke(app, args)
        assert done.exit_code == 2 and done.stderr.strip().count("\n") == 0, (args, done.output)


@pytest.mark.real
def test_the_servers_step_through_prepacked_linears_gives_the_same_tokens(smollm2, monkeypatch):
    """Three sequences decode together (full, SnapKV at 25 %, full over an int8 store), so every decode step has
    three rows and takes oneDNN, as every 128-token prompt piece does: each gives the tokens the plain step gives."""
    from tokensieve.serve.engine import Engine, Request

    net, tok = smollm2
    products = []
    monkeypatch.setattr(gemm, "product", lambda *args: products.append(args[0].shape[0]) or PRODUCT(*args))
    prompts = [haystack(tok, 700) + "\n\nThe essay says that", haystack(tok, 500, offset=5000) + "\n\nIn short,",
               haystack(tok, 600, offset=9000) + "\n\nThe author"]
    methods = [("full", 1.0, "fp"), ("snapkv", 0.25, "fp"), ("full", 1.0, "int8")]
    answers = {}
    for packed in (False, True):
        engine, outs = Engine(net, tok, packed_gemm=packed), []
        for prompt, (policy, budget, kv_dtype) in zip(prompts, methods, strict=True):
            outs.append([])
            engine.submit(Request(tok(prompt).input_ids, 16, policy, budget, ignore_eos=True, kv_dtype=kv_dtype),
                          outs[-1].append)
        engine.run_until_idle()
        answers[packed] = ["".join(e.text for e in events) for events in outs]
        assert bool(products) == packed  # the plain engine never reaches oneDNN
    assert answers[True] == answers[False]
    assert 3 in products and max(products) >= 128  # full-batch decode steps and prompt pieces both took it
    assert gemm.packed_bytes(net) > 0
    assert not any("forward" in vars(m) for m in net.modules() if isinstance(m, torch.nn.Linear))  # restored
