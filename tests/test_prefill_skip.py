"""Prefill token skipping (fastv, spts, gemfilter and the combinations): budget 1.0 is the unmodified model,
skipped tokens leave the forward and the later layers' caches, kept tokens keep their true positions, and bad
uses fail with one line. Unit tests on a tiny random Llama; the real-model tests on SmolLM2 (and every method on
Qwen in test_qwen.py)."""

import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from tokensieve.bench.flops import prefill_flops
from tokensieve.core.cache import SieveCache
from tokensieve.core.hooks import apply
from tokensieve.errors import TokensieveError
from tokensieve.methods import make
from tokensieve.prefill.skip import SkipState, Stage, select, stage_keeps
from tokensieve.run import branchable
from tokensieve.serve.engine import RequestError, servable

SKIPPERS = ("fastv", "spts", "gemfilter", "fastv+snapkv", "fastv+hisa")
SIX = {"spts": {"stage_layers": (2, 3, 4)}}


@pytest.fixture(scope="module")
def six_layers():
    config = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=6,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024)
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


def run(model, policy, ids, chunk=None, decode=3):
    """(first logits, logits after `decode` greedy steps, cache, tokens carried per layer by the last forward)."""
    cache = SieveCache(model.config)
    with torch.inference_mode(), apply(model, policy) as session:
        pieces = [ids] if chunk is None else list(ids.split(chunk, dim=1))
        for piece in pieces:
            logits = model(piece, past_key_values=cache, logits_to_keep=1).logits[:, -1]
        state = session.scratch.get("skip")
        carried = list(state.carried) if state else None
        first, step = logits, logits
        for _ in range(decode):
            step = model(step.argmax(-1, keepdim=True), past_key_values=cache, logits_to_keep=1).logits[:, -1]
    return first, step, cache, carried


def plain(model, ids, decode=3):
    with torch.inference_mode():
        out = model(ids, use_cache=True)
        logits, past = out.logits[:, -1], out.past_key_values
        first = logits
        for _ in range(decode):
            out = model(logits.argmax(-1, keepdim=True), past_key_values=past, use_cache=True)
            logits, past = out.logits[:, -1], out.past_key_values
    return first, logits


@pytest.mark.parametrize("name", SKIPPERS)
def test_budget_one_without_skipping_is_the_unmodified_model(name, six_layers):
    ids = torch.randint(0, 128, (1, 150), generator=torch.Generator().manual_seed(1))
    options = {**SIX.get(name, {}), **({"skip_keep": 1.0} if "+" in name else {})}
    first, step, cache, carried = run(six_layers, make(name, 1.0, **options), ids)
    ref_first, ref_step = plain(six_layers, ids)
    assert torch.allclose(first, ref_first, atol=1e-5) and torch.allclose(step, ref_step, atol=1e-5)
    assert carried == [150] * 6 and cache.stored_tokens() == [153] * 6


def test_fastv_drops_tokens_from_its_stage_on_and_keeps_sinks_and_the_last_tokens(six_layers):
    ids = torch.randint(0, 128, (1, 200), generator=torch.Generator().manual_seed(2))
    policy = make("fastv", 0.25, layer=2)
    first, step, cache, carried = run(six_layers, policy, ids)
    assert carried == [200, 200, 50, 50, 50, 50]
    assert cache.stored_tokens() == [203, 203, 53, 53, 53, 53]  # 3 decoded tokens on top of what each layer kept
    assert not torch.allclose(first, plain(six_layers, ids)[0], atol=1e-3)  # skipping changes the output
    assert torch.isfinite(step).all()


def test_spts_prunes_in_stages_down_to_the_budget(six_layers):
    ids = torch.randint(0, 128, (1, 200), generator=torch.Generator().manual_seed(3))
    _, _, _, carried = run(six_layers, make("spts", 0.25, stage_layers=(2, 3, 4)), ids)
    keeps = [math.ceil(k * 200) for k in stage_keeps(0.25, 3)]
    assert carried == [200, 200, *keeps, keeps[-1]] and keeps[-1] == 50
    assert stage_keeps(0.25, 3) == pytest.approx([0.63, 0.397, 0.25], abs=0.002)


@torch.inference_mode()
def test_gemfilter_equals_the_model_run_on_its_selection_at_true_positions(six_layers):
    ids = torch.randint(0, 128, (1, 160), generator=torch.Generator().manual_seed(4))
    policy = make("gemfilter", 0.25, layer=3)
    cache = SieveCache(six_layers.config)
    with apply(six_layers, policy) as session:
        logits = six_layers(ids, past_key_values=cache, logits_to_keep=1).logits[:, -1]
        kept = session.prepared["gemfilter_kept"]
    assert cache.stored_tokens() == [40] * 6 and kept.shape == (1, 40)
    assert kept[0, :4].tolist() == [0, 1, 2, 3] and kept[0, -36:].tolist() == list(range(124, 160))
    direct = six_layers(ids.gather(1, kept), position_ids=kept).logits[:, -1]
    assert torch.allclose(logits, direct, atol=1e-5)


def test_selection_keeps_sinks_last_tokens_and_the_pooled_best():
    scores = torch.zeros(1, 20)
    scores[0, 9] = 1.0  # one hot token: with kernel 3 its two neighbours come with it
    policy = make("fastv", 0.5, probe=2, last=4, kernel=3)
    policy.budget = type(policy.budget)(0.5, sinks=2, window=0)
    local = select(SkipState(20, scores=scores), policy, Stage(1, 2, 0.5), 20, first=True)
    assert local[0].tolist()[:2] == [0, 1] and {8, 9, 10} <= set(local[0].tolist())
    assert local[0].tolist()[-4:] == [16, 17, 18, 19] and local.shape == (1, 10)


def test_chunked_prefill_with_eviction_composes_with_skipping(six_layers):
    ids = torch.randint(0, 128, (1, 256), generator=torch.Generator().manual_seed(5))
    policy = make("fastv+snapkv", 0.25, layer=2, skip_keep=0.5)
    _, step, cache, carried = run(six_layers, policy, ids, chunk=64)
    assert carried == [64, 64, 32, 32, 32, 32]  # the last chunk's forward
    assert max(cache.stored_tokens()) <= 64 + 3 and torch.isfinite(step).all()


def test_a_combination_is_composed_of_its_methods_parts():
    """No diamond: fastv+snapkv is a FastV part and a SnapKV part, asked for by what they do."""
    from tokensieve.kv.snapkv import SnapKV
    from tokensieve.prefill.fastv import FastV
    from tokensieve.sparse.hisa import HISA

    snap, hisa = make("fastv+snapkv", 0.25, skip_keep=0.5), make("fastv+hisa", 0.125)
    assert type(snap.skipper()) is FastV and type(snap.evictor()) is SnapKV and snap.attender() is None
    assert type(hisa.skipper()) is FastV and hisa.evictor() is None and type(hisa.attender()) is HISA
    assert snap.skipper().budget.value == 0.5 and snap.evictor().budget.value == 0.25
    assert snap.evicts() and not hisa.evicts() and not make("snapkv", 1.0).evicts()
    assert not isinstance(snap, SnapKV | FastV) and not isinstance(hisa, HISA | FastV)


def test_fastv_snapkv_keeps_each_methods_own_pooling_window():
    policy = make("fastv+snapkv", 0.25)
    assert (policy.evictor().kernel, policy.skipper().kernel) == (make("snapkv", 0.25).kernel,
                                                                  make("fastv", 0.25).kernel)
    assert make("fastv+snapkv", 0.25, skip_kernel=9).skipper().kernel == 9
    with pytest.raises(TokensieveError, match="skip_kernel must be odd"):
        make("fastv+snapkv", 0.25, skip_kernel=8)


def test_every_skipper_refuses_a_dense_prefix_a_padded_batch_and_the_server(six_layers):
    for name in SKIPPERS:
        assert branchable(make(name, 0.25), 64) is not None, name  # the bench prefills it per method
        with pytest.raises(RequestError, match="packed step"):
            servable(make(name, 0.25))
    servable(make("snapkv", 0.25))
    ids = torch.randint(0, 128, (2, 100))
    mask = torch.ones(2, 100, dtype=torch.long)
    mask[1, :10] = 0
    with torch.inference_mode(), apply(six_layers, make("fastv", 0.25, layer=2)), \
            pytest.raises(TokensieveError, match="unpadded"):
        six_layers(ids, attention_mask=mask, past_key_values=SieveCache(six_layers.config))
    with pytest.raises(TokensieveError, match="chunked"):
        run(six_layers, make("gemfilter", 0.25), ids[:1], chunk=50)


def test_bad_options_fail_with_one_line(six_layers):
    with pytest.raises(TokensieveError, match="kernel"):
        make("fastv", 0.25, kernel=4)
    with pytest.raises(TokensieveError, match="outside layers"):
        run(six_layers, make("fastv", 0.25, layer=9), torch.randint(0, 128, (1, 80)))
    with pytest.raises(TokensieveError, match="must increase"):
        run(six_layers, make("spts", 0.25, stage_layers=(0.5, 0.55, 0.6)), torch.randint(0, 128, (1, 80)))


def test_flops_estimate_orders_the_methods(six_layers):
    config = six_layers.config
    dense = prefill_flops(config, 4000)
    fastv = prefill_flops(config, 4000, make("fastv", 0.25, layer=3))
    assert fastv < prefill_flops(config, 4000, make("fastv", 0.5, layer=3)) < dense
    assert prefill_flops(config, 4000, make("gemfilter", 1.0, layer=3)) > dense  # the probe forward is extra
    assert prefill_flops(config, 4000, make("gemfilter", 0.25, layer=3)) < dense


@pytest.mark.real
def test_every_skipper_on_smollm2_keeps_its_budget_and_fastv_finds_the_needle(smollm2):
    from tokensieve.bench.prompts import prompt_task
    from tokensieve.bench.suites import ruler_cases
    from tokensieve.run import generate

    case = ruler_cases([1024], 1)[0]  # niah_single_word, seed 0
    task = prompt_task("smollm2-135m", tuple(sorted(case.items())))
    kw = {"answer_prefix": task.answer_prefix, "max_new_tokens": task.max_new_tokens, "stop_at_newline": True}
    full = generate("smollm2-135m", task.context, task.question, "full", 1.0, **kw)
    same = generate("smollm2-135m", task.context, task.question, "fastv", 1.0, **kw)
    assert same.token_ids == full.token_ids
    for name in SKIPPERS:
        r = generate("smollm2-135m", task.context, task.question, name, 0.25, **kw)
        s = r.stats
        assert s.kept_tokens[-1] <= math.ceil(0.25 * s.prompt_tokens) + 64 < s.prompt_tokens, name
        assert s.kv_bytes_kept < 0.75 * s.kv_bytes_full, name  # rows reserved for the kept tokens only
        if name == "fastv":
            assert task.score(r.answer)[0] == 1.0, r.answer


@pytest.mark.real
def test_skipping_refuses_a_model_with_sliding_layers(gemma3):
    model, _ = gemma3
    with pytest.raises(TokensieveError, match="full-attention models only"), apply(model, make("fastv", 0.25)):
        pass
