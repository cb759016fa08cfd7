"""Encoder token reduction mechanics on tiny random BERT and ViT configs: shapes, sizes, masks, budgets, and the
exactness of merging identical rows (never a stand-in for the real-model tests in test_encoder.py)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import BertConfig, BertModel, ViTConfig, ViTModel

from tokensieve.encoder import METHODS, merge
from tokensieve.encoder.schedule import Schedule, geometric, kept_ratio
from tokensieve.encoder.tokens import Tokens
from tokensieve.errors import TokensieveError

PLAIN_METHODS = [m for m in METHODS if m != "subword"]


@pytest.fixture(scope="module")
def bert():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=64)
    return BertModel(config).eval()


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    config = ViTConfig(image_size=32, patch_size=4, hidden_size=48, num_hidden_layers=3, num_attention_heads=4,
                       intermediate_size=96)
    return ViTModel(config).eval()


def _padded_batch():
    torch.manual_seed(1)
    ids = torch.randint(5, 100, (3, 20))
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0
    mask[2, 5:] = 0
    return ids, mask


def test_merging_identical_rows_is_exact(bert):
    """Two pairs of identical rows merged with proportional attention: the size-weighted mean of the outputs is the
    plain model's mean, to float error (a wrong bias, weight or index breaks it)."""
    ids = torch.randint(5, 100, (1, 12))

    def duplicate(_m, _a, out):
        out = out.clone()
        out[:, 6], out[:, 8] = out[:, 5], out[:, 7]
        return out

    handle = bert.embeddings.register_forward_hook(duplicate)
    try:
        with torch.no_grad():
            want = bert(input_ids=ids).last_hidden_state.mean(1)
            with merge(bert, "tome", schedule=Schedule(fractions=[0.17, 0, 0, 0]), pool="mean") as run:
                got = run.mean_pool(bert(input_ids=ids).last_hidden_state)
    finally:
        handle.remove()
    assert run.sizes().tolist() == [[1, 1, 1, 1, 1, 2, 2, 1, 1, 1]]
    assert torch.allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("method", PLAIN_METHODS)
def test_padding_never_mixes_and_sizes_add_up(bert, method):
    """Each sequence of a padded batch keeps the class row first, (merging) carries its own token count in its
    sizes, and gives exactly what it gives alone (padding and other sequences never enter its rows)."""
    ids, mask = _padded_batch()
    with torch.no_grad(), merge(bert, method, keep=0.6) as run:
        batched = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        sizes = run.sizes().clone()
        alone = []
        for b in range(3):
            n = int(mask[b].sum())
            alone.append(run.mean_pool(bert(input_ids=ids[b:b + 1, :n]).last_hidden_state) if method != "random_prune"
                         else None)
    if METHODS[method].merges:  # merged rows carry their tokens; pruned ones are gone
        assert sizes.sum(1).tolist() == mask.sum(1).float().tolist()
    else:
        assert set(sizes.flatten().tolist()) <= {0.0, 1.0}
    assert (sizes[:, 0] == 1).all()  # the class token stays first, unmerged
    assert (sizes > 0).sum(1).tolist() < mask.sum(1).tolist()  # something was removed in every sequence
    if method != "random_prune":  # random draws depend on the batch shape
        weight = sizes.unsqueeze(-1)
        pooled = (batched * weight).sum(1) / weight.sum(1)
        for b in range(3):
            assert torch.allclose(pooled[b], alone[b][0], atol=1e-4), b


@pytest.mark.parametrize("method", PLAIN_METHODS)
def test_vit_mechanics(vit, method):
    """A ViT (pre-LN: rows go between layers): the class token stays, the widths shrink, the pooler runs."""
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), merge(vit, method, keep=0.7) as run:
        out = vit(pixel_values=pixels)
    assert out.last_hidden_state.shape[1] < 65
    assert run.sizes().sum(1).tolist() == [65.0, 65.0] or not METHODS[method].merges
    assert out.pooler_output.shape == (2, 48)
    assert not run.schedule.mid


def test_keep_one_is_the_plain_model(bert):
    ids, mask = _padded_batch()
    with torch.no_grad():
        want = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        with merge(bert, "tome", keep=1.0) as run:
            got = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        with merge(bert, "tome", keep=0.99999):  # the hook path, removing nothing
            hooked = bert(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.equal(got, want) and run.kept_ratio == 1.0
    real = mask.bool()
    assert torch.allclose(hooked[real], want[real], atol=1e-5)


def test_model_restored_and_one_owner(bert):
    before = bert.config._attn_implementation
    with merge(bert, "tome", keep=0.5), pytest.raises(TokensieveError, match="already inside"), \
            merge(bert, "pitome", keep=0.5):
        pass
    assert bert.config._attn_implementation == before
    assert "forward" not in vars(bert)
    assert not any(h for layer in bert.encoder.layer for h in layer._forward_hooks.values())


@settings(max_examples=30, deadline=None)
@given(st.floats(0.2, 1.0), st.integers(2, 12), st.booleans())
def test_geometric_meets_its_kept_ratio(keep, layers, mid):
    floor = kept_ratio([1.0] * layers, mid)
    if keep < floor + 1e-6:
        with pytest.raises(TokensieveError):
            geometric(keep, layers, mid)
        return
    fractions = geometric(keep, layers, mid)
    assert abs(kept_ratio(fractions, mid) - keep) < 1e-6


def test_measured_kept_ratio_within_budget(bert):
    """Rounding down never removes more than asked: measured kept ratio >= nominal, and close to it."""
    ids = torch.randint(5, 100, (4, 60))
    for keep in (0.8, 0.5):
        with torch.no_grad(), merge(bert, "pool_attention", keep=keep) as run:
            bert(input_ids=ids)
        assert keep <= run.kept_ratio < keep + 0.06


def test_keep_rows_stay_in_order():
    hidden = torch.arange(12.0).reshape(1, 6, 2)
    tokens = Tokens.start(hidden, torch.tensor([[1, 1, 1, 1, 1, 0]]), protect_first=True)
    kept = tokens.keep(torch.tensor([[True, False, True, False, True, True]]))
    assert kept.hidden[0, :, 0].tolist() == [0.0, 4.0, 8.0]  # the padded row is never kept
    assert kept.size.tolist() == [[1.0, 1.0, 1.0]]


def test_subword_needs_a_tokenizer(bert):
    with pytest.raises(TokensieveError, match="tokenizer"), merge(bert, "subword", keep=0.5):
        pass


def _row(case_id, method, budget, metrics, quality=None):
    return {"status": "ok", "task": "encoder", "case_id": case_id, "method": method, "budget": budget,
            "quality": quality, "metrics": metrics}


def test_encoder_report_states_only_supported_differences(tmp_path):
    """Synthetic rows: a method that loses 40 of 100 queries is 'worse'; one that loses 1 is 'n.s.'; one that
    kept more than its budget is never ranked best; speed-ups are ratios to the plain model's in the same rows."""
    from tokensieve.bench import encoder_report as report

    def retrieval(hits, kept=0.7):
        return {"hits": hits, "rr": [float(h) or 0.5 for h in hits], "cosine": [0.99] * len(hits),
                "kept_ratio": kept, "pairs": len(hits)}

    def speed(per_s):
        return {"sentences_per_s": per_s, "kept_ratio": 0.7, "gflops": 7.0, "gflops_full": 10.0, "peak_rss_mb": 500}

    full = [1] * 100
    rows = [_row("encoder/retrieval/corpus", "none", 1.0, retrieval(full), 1.0),
            _row("encoder/retrieval/corpus", "tome", 0.7, retrieval([0] * 40 + [1] * 60), 0.6),
            _row("encoder/retrieval/corpus", "pitome", 0.7, retrieval([0] + [1] * 99), 0.99),
            _row("encoder/retrieval/corpus", "subword", 0.7, retrieval(full, kept=0.95), 1.0),  # kept too much
            _row("encoder/throughput/256", "none", 1.0, speed(10.0)),
            _row("encoder/throughput/256", "tome", 0.7, speed(14.0)),
            _row("encoder/throughput/256", "pitome", 0.7, speed(13.0))]
    paths = report.write(rows, tmp_path, "tokensieve bench --suite encoder")
    text = paths["markdown"].read_text()
    tome = next(line for line in text.splitlines() if line.startswith("| tome | 0.7 | 0.700 | 60%"))
    pitome = next(line for line in text.splitlines() if line.startswith("| pitome | 0.7 | 0.700 | 99%"))
    assert "| worse |" in tome and "1.40×" in tome
    assert "| n.s. |" in pitome and "1.30×" in pitome
    assert "keep 0.7: corpus: **pitome**" in text and "not ranked: subword" in text
    assert paths["png"].stat().st_size > 10_000 and "plotly" in paths["html"].read_text()


def test_encoder_suite_plan():
    """Every method at 0.9-0.3 on both retrieval sets and at 256 tokens, the plain model once per case, searched
    variants included; every cell keyed by the encoder package's sources."""
    from tokensieve.bench.cell import code_version
    from tokensieve.bench.command import plan
    from tokensieve.bench.suites import ENCODER_METHODS

    cells = plan("encoder", None, None, None, None, None, None, None, None, echo=lambda _: None)
    ids = {(c.case_dict.get("dataset") or c.case_dict["tokens"], c.method, c.budget) for c in cells}
    for target in ("humaneval", "corpus", 256):
        assert (target, "none", 1.0) in ids
        for method in (*ENCODER_METHODS, "tome+search", "pool_attention+search"):
            for keep in (0.9, 0.7, 0.5, 0.3):
                assert (target, method, keep) in ids
    assert {(128, "tome", 0.5), (512, "pool_attention", 0.3), (512, "none", 1.0)} <= ids
    assert all(c.model == "minilm-l6" for c in cells) and len(cells) == len(set(cells))
    assert code_version("tome") == code_version("pitome") != code_version("snapkv")
