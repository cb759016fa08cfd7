"""KV storage precision (issue 28, step 1): int8 / int4 codes under every policy, bytes counted honestly.

Stated tolerance, on 32 teacher-forced decode steps after a 1,500-token needle prompt (SmolLM2 and Qwen):
- int8 keeps 95 % of the argmaxes and picks nothing but fp's best or a near-tie of it (0.1 logit), with a KL
  divergence from fp under 1e-3 nats at every step and logits within 1 % of the largest logit;
- int4 keeps a mean KL under 0.01 nats.
Measured on SmolLM2: int8 4e-5 nats at most and 0.3 % of the largest logit, int4 2e-3 nats on average (64 steps
after 2,000 tokens: int8 4e-4 / 1e-4 nats at most on SmolLM2 / Qwen, int4 3e-3 / 2e-3 on average).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tiers import sweep

from tokensieve.core import quant as quant_module
from tokensieve.core.cache import QuantizedLayer, SieveCache, SieveLayer
from tokensieve.core.hooks import apply
from tokensieve.core.quant import QuantizedRows, check_kv_dtype
from tokensieve.core.tensors import storage_bytes
from tokensieve.data.needle import needle_case
from tokensieve.errors import TokensieveError
from tokensieve.methods import make
from tokensieve.run import generate


@settings(max_examples=25, deadline=None)
@given(bits=st.sampled_from([8, 4]), groups=st.integers(1, 3), spread=st.floats(0.01, 50.0), seed=st.integers(0, 99))
def test_codes_stay_within_half_a_step_of_every_value(bits, groups, spread, seed):
    gen = torch.Generator().manual_seed(seed)
    keys = torch.randn(2, 3, 32 * groups, 64, generator=gen) * spread
    values = torch.randn(2, 3, 32 * groups, 64, generator=gen) * spread
    rows = QuantizedRows(bits, 32)
    rows.append(keys, values)
    k, v = rows.dequantize(torch.float32)
    levels = 2 ** bits - 1
    key_step = (keys.view(2, 3, groups, 32, 64).amax(3) - keys.view(2, 3, groups, 32, 64).amin(3)) / levels
    value_step = (values.view(2, 3, -1, 2, 32).amax(4) - values.view(2, 3, -1, 2, 32).amin(4)) / levels
    slack = 1e-3 * spread  # float16 scales: their own rounding
    assert ((k - keys).abs().view(2, 3, groups, 32, 64) <= key_step[:, :, :, None] / 2 + slack).all()
    assert ((v - values).abs().view(2, 3, -1, 2, 32) <= value_step[..., None] / 2 + slack).all()


def test_an_unknown_dtype_or_an_odd_head_dim_gets_one_clear_error(tiny_llama):
    assert check_kv_dtype("fp") is None and check_kv_dtype("int8") == 8 and check_kv_dtype("int4", 64) == 4
    with pytest.raises(TokensieveError, match="unknown kv dtype 'int3': choose from fp, int8, int4"):
        check_kv_dtype("int3")
    with pytest.raises(TokensieveError, match="head_dim 63 is odd"):
        check_kv_dtype("int4", 63)
    with pytest.raises(TokensieveError, match="unknown kv dtype"), apply(tiny_llama, make("full"), kv_dtype="fp8"):
        pass


def _prefill(model, cache, ids, policy="full", budget=1.0):
    with torch.inference_mode(), apply(model, make(policy, budget)):
        model(input_ids=ids, cache=cache, use_cache=True)
        cache.compact()
        for token in ids[0, :40]:
            model(input_ids=token.view(1, 1), cache=cache, use_cache=True)


def _all_storage(layer: SieveLayer) -> int:
    """Every tensor the layer holds, found by walking it rather than by its own accounting."""
    tensors = [t for t in vars(layer).values() if isinstance(t, torch.Tensor)]
    tensors += list(layer.state.values())
    if isinstance(layer, QuantizedLayer) and layer.cold is not None:
        tensors += [t for t in vars(layer.cold).values() if isinstance(t, torch.Tensor)]
    return storage_bytes(tensors)


@pytest.mark.parametrize("kv_dtype", ["int8", "int4"])
def test_a_quantized_layer_keeps_sinks_and_window_exact_and_counts_every_byte(tiny_llama, kv_dtype):
    ids = torch.randint(0, 128, (1, 300), generator=torch.Generator().manual_seed(1))
    fp, quant = SieveCache(tiny_llama.config), SieveCache(tiny_llama.config, kv_dtype=kv_dtype)
    _prefill(tiny_llama, fp, ids)
    _prefill(tiny_llama, quant, ids)
    for depth, (a, b) in enumerate(zip(fp.layers, quant.layers, strict=True)):
        (ka, va), (kb, vb) = a.rows(), b.rows()
        assert b.stored == a.stored == 340 and torch.equal(a.positions, b.positions)
        assert b.cold is not None and b.cold.rows % 32 == 0 and b.keys.shape[2] >= 32  # the window stays fp
        if depth == 0:  # the first layer's rows depend on the tokens only: its sinks and window are exact
            assert torch.equal(kb[:, :, :4], ka[:, :, :4]) and torch.equal(vb[:, :, -32:], va[:, :, -32:])
        tolerance = 0.02 if kv_dtype == "int8" else 0.3
        assert (kb - ka).abs().max() <= tolerance * ka.abs().max()
        assert b.allocated_bytes() == _all_storage(b) < a.allocated_bytes()
    assert quant.kv_bytes() == sum(_all_storage(layer) for layer in quant.layers)


def test_eviction_over_a_quantized_layer_thaws_then_keeps_exact_rows(tiny_llama):
    ids = torch.randint(0, 128, (1, 300), generator=torch.Generator().manual_seed(2))
    cache = SieveCache(tiny_llama.config, kv_dtype="int8")
    _prefill(tiny_llama, cache, ids)
    layer = cache.layers[0]
    keys, _ = layer.rows()
    index = torch.arange(0, 340, 3).expand(1, 2, -1)
    layer.keep(index)
    assert layer.cold is None and layer.stored == index.shape[-1]
    assert torch.equal(layer.rows()[0], keys.gather(2, index[..., None].expand(-1, -1, -1, keys.shape[-1])))


@pytest.mark.parametrize("kv_dtype", ["int8", "int4"])
@pytest.mark.parametrize("path", ["compiled", "torch"])
def test_reading_a_selection_gives_exactly_the_rows_a_whole_read_gives(tiny_llama, kv_dtype, path, monkeypatch):
    """Both ways a selection is read, the compiled loop (`core.kernels`, where it builds) and torch's ops."""
    if path == "torch":
        monkeypatch.setattr(quant_module, "optional", lambda: None)
    ids = torch.randint(0, 128, (1, 300), generator=torch.Generator().manual_seed(3))
    cache = SieveCache(tiny_llama.config, kv_dtype=kv_dtype)
    _prefill(tiny_llama, cache, ids)
    layer = cache.layers[1]
    keys, values = layer.rows()
    gen = torch.Generator().manual_seed(4)
    picks = torch.stack([torch.randperm(layer.stored, generator=gen)[:90] for _ in range(2)])[None]
    picks[0, 0, :3] = torch.tensor([0, 3, layer.stored - 1])  # a sink, the last sink, the newest row
    got_keys, got_values = layer.gather(picks)
    index = picks[..., None].expand(-1, -1, -1, keys.shape[-1])
    assert torch.equal(got_keys, keys.gather(2, index)) and torch.equal(got_values, values.gather(2, index))
    span_keys, span_values = layer.span(20, 200)
    assert torch.equal(span_keys, keys[:, :, 20:200]) and torch.equal(span_values, values[:, :, 20:200])
    assert torch.equal(layer.span_keys(20, 200), keys[:, :, 20:200])  # the keys alone, the same bits


@pytest.mark.parametrize("kv_dtype", ["int8", "int4"])
@pytest.mark.parametrize(("policy", "budget"), [("full", 1.0), ("snapkv", 0.25), ("quest", 0.25)])
def test_coding_each_layer_as_it_attends_gives_compacts_codes_within_the_one_piece_reservation(tiny_llama, kv_dtype,
                                                                                               policy, budget):
    """The server's one-piece prefill (`Session.code_when_attended`): the same codes and decode logits as coding
    after the prompt, while the cache never holds more than `Footprint.prefill_bytes(whole=True)` reserves."""
    from tokensieve.serve.pool import Footprint

    n, m = 300, 8
    ids = torch.randint(0, 128, (1, n), generator=torch.Generator().manual_seed(7))
    method = make(policy, budget)
    runs = []
    for as_attended in (False, True):
        cache = SieveCache(tiny_llama.config, reserve=n if method.evicts() else n + m, kv_dtype=kv_dtype)
        held = []
        for layer in cache.sieve_layers.values():  # what the cache holds when each layer is about to be coded
            layer.compact = lambda code=layer.compact, cache=cache, held=held: (held.append(cache.kv_bytes()),
                                                                                code())[1]
        logits = []
        with torch.inference_mode(), apply(tiny_llama, method, n) as session:
            session.decode_room, session.code_when_attended = m, as_attended
            out = tiny_llama(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
            session.code_when_attended = False
            peak = max(held, default=0)
            cache.compact()
            state = session.state_bytes()
            for token in ids[0, :m]:
                logits.append(out.logits[0, -1])
                out = tiny_llama(input_ids=token.view(1, 1), cache=cache, use_cache=True)
        parts = [layer.stored_parts() for layer in cache.sieve_layers.values()]
        runs.append((peak, state, parts, torch.stack(logits)))
    (_, _, before, logits_before), (peak, state, after, logits_after) = runs
    for a, b in zip(before, after, strict=True):
        assert a.bits == b.bits and len(a.codes) == len(b.codes) > 0
        for x, y in zip([a.head_keys, a.head_values, a.hot_keys, a.hot_values, *a.codes],
                        [b.head_keys, b.head_values, b.hot_keys, b.hot_values, *b.codes], strict=True):
            assert torch.equal(x, y)
    assert torch.equal(logits_before, logits_after)
    footprint = Footprint.of(tiny_llama)
    whole = footprint.prefill_bytes(n, m, method, whole=True, kv_dtype=kv_dtype)
    assert 0 < peak + state <= whole and peak < footprint.row_bytes * n  # under the prompt at full precision


def test_a_bound_quantized_layer_defers_its_codes_and_dense_attention_still_reads_every_row(tiny_llama):
    ids = torch.randint(0, 128, (1, 300), generator=torch.Generator().manual_seed(5))
    logits = []
    for kv_dtype in ("int8", "int8"), ("int8", None):
        cache = SieveCache(tiny_llama.config, kv_dtype="int8")
        _prefill(tiny_llama, cache, ids)
        with torch.inference_mode():
            if kv_dtype[1] is None:  # no session: the model reads the rows update() returns, every one of them
                out = tiny_llama(input_ids=ids[:, :1], cache=cache, use_cache=True)
            else:
                with apply(tiny_llama, make("full")):
                    out = tiny_llama(input_ids=ids[:, :1], cache=cache, use_cache=True)
                layer = cache.layers[0]
                assert layer.deferred and layer.keys.shape[2] < layer.stored  # only the rows after the codes
        logits.append(out.logits)
    assert torch.equal(logits[0], logits[1])


@pytest.mark.parametrize("model", sweep(["smollm2-135m", "qwen2.5-coder-0.5b"], ("smollm2-135m",)))
def test_int8_stays_within_the_stated_logit_tolerance_and_int4_close(model, request):
    net, tok = request.getfixturevalue("smollm2" if model.startswith("smol") else "qwen05")
    case = needle_case(tok, 1500, 0.5)
    ids = tok(case.context + case.question, return_tensors="pt").input_ids
    prompt, cont = ids[:, :-32], ids[:, -32:]
    logits = {}
    for kv_dtype in ("fp", "int8", "int4"):
        cache = SieveCache(net.config, kv_dtype=kv_dtype)
        with torch.inference_mode(), apply(net, make("full")):
            net(input_ids=prompt, cache=cache, use_cache=True, logits_to_keep=1)
            cache.compact()
            steps = [net(input_ids=cont[:, i:i + 1], cache=cache, use_cache=True).logits for i in range(32)]
        logits[kv_dtype] = torch.cat(steps, 1)[0].float()
        if kv_dtype != "fp":
            assert all(layer.cold is not None for layer in cache.sieve_layers.values())
    ref = torch.log_softmax(logits["fp"], -1)

    def kl(kv_dtype: str) -> torch.Tensor:
        return (ref.exp() * (ref - torch.log_softmax(logits[kv_dtype], -1))).sum(-1)

    picked = logits["int8"].argmax(-1)  # fp's best, or a near-tie of it (within 0.1 of its logit)
    assert (logits["fp"].gather(-1, picked[:, None])[:, 0] >= logits["fp"].amax(-1) - 0.1).all()
    assert (picked == logits["fp"].argmax(-1)).float().mean() >= 0.95
    assert kl("int8").max() < 1e-3
    assert (logits["int8"] - logits["fp"]).abs().max() < 0.01 * logits["fp"].abs().max()
    assert kl("int4").mean() < 1e-2


def _measured(stats) -> dict:
    """Everything but timings and process memory."""
    return {k: v for k, v in asdict(stats).items() if not k.endswith(("_s", "_mb"))}


def test_greedy_tokens_on_the_demo_needle_are_identical_with_int8_and_bytes_fall(smollm2):
    _, tok = smollm2
    case = needle_case(tok, 2000, 0.5)
    kw = {"chunk": 512, "answer_prefix": case.answer_prefix, "max_new_tokens": 12, "stop_at_newline": True}
    fp = generate("smollm2-135m", case.context, case.question, "full", 1.0, **kw)
    same = generate("smollm2-135m", case.context, case.question, "full", 1.0, kv_dtype="fp", **kw)
    assert same.token_ids == fp.token_ids and _measured(same.stats) == _measured(fp.stats)
    int8 = generate("smollm2-135m", case.context, case.question, "full", 1.0, kv_dtype="int8", **kw)
    int4 = generate("smollm2-135m", case.context, case.question, "full", 1.0, kv_dtype="int4", **kw)
    assert int8.token_ids == fp.token_ids and case.expected in int8.answer
    assert (int8.stats.kv_dtype, int4.stats.kv_dtype, fp.stats.kv_dtype) == ("int8", "int4", "fp")
    full = fp.stats.kv_bytes_full
    assert int8.stats.kv_bytes_kept < 0.36 * full and int4.stats.kv_bytes_kept < 0.24 * full  # at 2k (docs: 4k)


def test_a_policy_evicts_at_full_precision_then_its_kept_rows_are_coded(smollm2):
    _, tok = smollm2
    case = needle_case(tok, 1000, 0.5)
    kw = {"answer_prefix": case.answer_prefix, "max_new_tokens": 8}
    fp = generate("smollm2-135m", case.context, case.question, "snapkv", 0.25, **kw)
    int4 = generate("smollm2-135m", case.context, case.question, "snapkv", 0.25, kv_dtype="int4", **kw)
    assert int4.stats.kept_tokens == fp.stats.kept_tokens  # the same tokens chosen, then stored as codes
    assert int4.stats.kv_bytes_kept < 0.4 * fp.stats.kv_bytes_kept


def test_tree_decoding_and_a_shared_prefix_refuse_a_quantized_store(smollm2):
    from tokensieve.decode.loop import speculate

    with pytest.raises(TokensieveError, match="tree decoding keeps a full-precision cache"):
        speculate("smollm2-135m", "some context " * 20, "what?", kv_dtype="int8", max_new_tokens=4)


def test_the_cli_rejects_an_unknown_kv_dtype_with_one_line(tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_text("The secret passkey for the blue door is 7294. " + "Essays are long. " * 60)
    result = subprocess.run([sys.executable, "-m", "tokensieve.cli", "generate", "--context-file", str(doc), "-q",
                             "what?", "--kv-dtype", "int3"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == ["error: unknown kv dtype 'int3': choose from fp, int8, int4"]


@pytest.mark.slow  # ~20 s; the same admission on a tiny model runs in every tier (tests/test_serve_unit.py)
def test_the_server_admits_int4_requests_by_their_coded_bytes_on_a_real_model(smollm2):
    from tokensieve.serve.engine import Engine, Request
    from tokensieve.serve.pool import Footprint, measured_bytes

    net, tok = smollm2
    footprint, n, m = Footprint.of(net), 1024, 4
    full, coded = footprint.decode_bytes(n, m, make("full")), footprint.decode_bytes(n, m, make("full"), "int4")
    assert coded < 0.26 * full  # the reservation: codes with room to grow, the fp rows, positions (1k rows)
    pool, peak = 2 * full, footprint.prefill_bytes(n, m, make("full"))
    engine = Engine(net, tok, kv_pool_bytes=pool, max_batch=64, prefill_chunk=2048)
    text = tok(needle_case(tok, 3000, 0.5).context).input_ids
    rows = [text[i * 100:i * 100 + n] for i in range(9)]
    admitted = {}
    for kv_dtype in ("fp", "int4"):
        for ids in rows:
            engine.submit(Request(ids, m, "full", 1.0, ignore_eos=True, kv_dtype=kv_dtype), lambda e: None)
        engine.hold_decode = True  # prefill what fits, then count who holds the pool at once
        while True:  # a step admits what fits, then prefills one piece; until a step admits nobody
            engine.step()
            if all(s.decoding for s in engine.running):
                before = len(engine.running)
                engine.step()
                if len(engine.running) == before:
                    break
        admitted[kv_dtype] = len(engine.running)
        assert all(measured_bytes(s.cache, s.session) <= engine.pool.reserved[s.id] for s in engine.running)
        engine.hold_decode = False
        while engine.waiting or engine.running:
            engine.step()
    # once pieces no longer fit, the next prompt goes in in one piece, coded layer by layer: k coded + 1 such
    # peak must fit (before layer-by-layer coding, a prompt's full-precision peak: 5)
    whole = footprint.prefill_bytes(n, m, make("full"), whole=True, kv_dtype="int4")
    assert whole < peak and admitted["fp"] == 2 and admitted["int4"] == (pool - whole) // coded + 1 == 7, admitted


def test_a_prompt_coded_layer_by_layer_in_one_piece_answers_as_generate_does(smollm2):
    """A pool too small for the prompt at full precision: the engine prefills it in one piece, each layer coded as
    it attends (`Session.code_when_attended`), within `prefill_bytes(whole=True)`, and decodes generate's tokens."""
    from tokensieve.data.corpus import haystack
    from tokensieve.serve.engine import Engine, Request
    from tokensieve.serve.pool import Footprint

    net, tok = smollm2
    prompt = haystack(tok, 600) + "\n\nIn one sentence, the essay says that"
    ids, m, quest = tok(prompt).input_ids, 12, make("quest", 0.25)
    footprint = Footprint.of(net)
    whole = footprint.prefill_bytes(len(ids), m, quest, whole=True, kv_dtype="int4")
    assert whole < footprint.prefill_bytes(len(ids), m, quest, kv_dtype="int4")  # pieces would not fit
    engine = Engine(net, tok, kv_pool_bytes=whole, max_batch=4)
    seq = engine.submit(Request(ids, m, "quest", 0.25, kv_dtype="int4"), lambda e: None)
    engine.run_until_idle()
    reference = generate("smollm2-135m", context=prompt, question="", policy="quest", budget=0.25, plain=True,
                         max_new_tokens=m, kv_dtype="int4")
    assert seq.one_piece and seq.generated == reference.token_ids


@pytest.mark.slow  # ~30 s
def test_the_capacity_bench_counts_what_the_byte_model_admits(smollm2):
    from tokensieve.bench.serving import Method, prompts_for, served_at_once
    from tokensieve.serve.pool import Footprint

    net, tok = smollm2
    prompt_tokens, m = 1024, 4
    n = len(tok(prompts_for(tok, prompt_tokens, 1)[0]).input_ids)
    footprint = Footprint.of(net)
    full, coded = footprint.decode_bytes(n, m, make("full")), footprint.decode_bytes(n, m, make("full"), "int4")
    peak = footprint.prefill_bytes(n, m, make("full"), whole=True, kv_dtype="int4")
    pool_mb = 2 * full / 2**20
    counts = {label: served_at_once("smollm2-135m", Method.parse(label), pool_mb, prompt_tokens, m, requests=8)
              for label in ("full", "full@int4")}
    assert counts["full"]["served_at_once"] == 2
    assert counts["full@int4"]["served_at_once"] == (2 * full - peak) // coded + 1 > 2, counts
    assert counts["full@int4"]["kv_mb_of_those"] < counts["full"]["kv_mb_of_those"]


@pytest.mark.parametrize("policy", ["quest", *(pytest.param(p, marks=pytest.mark.slow)  # ~15 s each
                                                for p in ("hisa", "rectified", "fasa"))])
def test_a_selectors_summaries_are_counted_and_reserved_on_a_real_model(smollm2, policy):
    """A selector's summaries are bytes it holds (Quest's code pages, HISA's and rectified's block pools, FASA's
    copied key channels): a run reports them (`policy_state_bytes`, measured from the session's state) and they
    equal what the KV pool reserves for them (`Policy.state_bytes` over int4 codes), or are bounded by it."""
    from tokensieve.core.code_pages import code_page_bytes
    from tokensieve.core.quant import GROUP
    from tokensieve.serve.pool import Footprint

    net, tok = smollm2
    case = needle_case(tok, 700, 0.5)
    result = generate("smollm2-135m", case.context, case.question, policy, 0.25, max_new_tokens=4, kv_dtype="int4")
    footprint, selector = Footprint.of(net), make(policy, 0.25)
    shape = footprint.kv_heads, footprint.head_dim, footprint.element, 4
    expected = sum(selector.state_bytes(rows, *shape) for rows in result.stats.kept_tokens_end)
    measured = result.stats.policy_state_bytes
    if policy == "fasa":  # its channel copy grows like the cache, with spare rows: the reservation bounds it
        assert 0.75 * expected <= measured <= expected
    elif policy == "quest":  # pages of coded rows: the newest group may still be at full precision
        slack = footprint.full_layers * code_page_bytes(GROUP // selector.page + 1, footprint.kv_heads,
                                                        footprint.head_dim, 4)
        assert expected - slack <= measured <= expected
        assert expected < footprint.full_layers * make("quest", 0.25).state_bytes(
            result.stats.prompt_tokens, *shape[:3]) / 7  # an eighth of float32 bounds, or less
    else:
        assert measured == expected > 0
    assert result.stats.new_tokens == 4
    n = result.stats.prompt_tokens
    reserved = footprint.decode_bytes(n, 4, selector, "int4") - footprint.decode_bytes(n, 4, make("full"), "int4")
    assert reserved == footprint.full_layers * selector.state_bytes(n + 4, *shape)


def test_full_attention_holds_no_state_of_its_own(smollm2):
    net, tok = smollm2
    case = needle_case(tok, 300, 0.5)
    result = generate("smollm2-135m", case.context, case.question, "full", 1.0, max_new_tokens=2, kv_dtype="int4")
    assert result.stats.policy_state_bytes == 0
