"""Tree decoding on real models: every drafter reproduces plain greedy's tokens (SmolLM2 and Qwen2.5-Coder-0.5B,
with full attention, a KV policy at budget 1.0 and below, and a dynamic selector), through `speculate`,
transformers' `model.generate(custom_generate=...)`, the CLI and one bench cell."""

from __future__ import annotations

import json

import pytest
from tiers import sweep
from typer.testing import CliRunner

import tokensieve
from tokensieve.cli import app
from tokensieve.decode.loop import DecodeOptions, speculate
from tokensieve.decode.workloads import prompt
from tokensieve.run import generate

pytestmark = pytest.mark.real
DECODERS = ("recycling", "lookup", "layerskip")


def _same(model, p, decoder, policy, budget, n, options=None):
    kwargs = dict(max_new_tokens=n, plain=p.plain, answer_prefix=p.answer_prefix, stop=p.stop)
    reference = generate(model, p.context, p.question, policy, budget, **kwargs)
    result = speculate(model, p.context, p.question, policy, budget, decode=decoder, options=options, **kwargs)
    assert result.token_ids == reference.token_ids, (model, decoder, policy, budget)
    return result


@pytest.mark.parametrize(("policy", "budget", "decoders"), [
    ("full", 1.0, DECODERS), ("snapkv", 0.25, DECODERS), ("tokenselect", 0.25, ("recycling",))])
def test_smollm2_drafters_are_lossless(smollm2, policy, budget, decoders):
    p = prompt("code", 0)
    for decoder in decoders:
        result = _same("smollm2-135m", p, decoder, policy, budget, 16)
        assert result.stats.steps <= result.stats.new_tokens - 1
        assert result.stats.accepted_per_step >= 1.0


def test_smollm2_lossless_on_prose_and_json(smollm2):
    for workload in ("prose", "json"):
        _same("smollm2-135m", prompt(workload, 1), "recycling", "full", 1.0, 16)


@pytest.mark.slow  # the second model: test_smollm2_drafters_are_lossless covers recycling under snapkv by default
def test_qwen_recycling_is_lossless_with_a_kv_policy_at_full_budget(qwen05):
    p = prompt("code", 1)
    for policy in ("full", "snapkv"):
        _same("qwen2.5-coder-0.5b", p, "recycling", policy, 1.0, 12)


def test_a_warm_started_adjacency_matrix_stays_lossless(smollm2):
    from tokensieve.bench.decode_cells import calibrated

    p = prompt("code", 3)
    warm_matrix = calibrated("smollm2-135m", "code", texts=8)
    cold = _same("smollm2-135m", p, "recycling", "full", 1.0, 32)
    warm = _same("smollm2-135m", p, "recycling", "full", 1.0, 32, DecodeOptions(adjacency=warm_matrix.copy()))
    assert warm.stats.accepted_per_step >= 1.5 and cold.stats.accepted_per_step >= 1.0
    assert warm.stats.adjacency_bytes == warm_matrix.table.nbytes + warm_matrix.written.nbytes


def test_model_generate_with_a_tree_decoder_under_apply(smollm2):
    net, tokenizer = smollm2
    p = prompt("code", 2)
    ids = tokenizer(p.context, return_tensors="pt").input_ids
    reference = generate("smollm2-135m", p.context, "", "snapkv", 0.5, plain=True, max_new_tokens=20)
    decoder = tokensieve.TreeDecoding("recycling")
    with tokensieve.apply(net, tokensieve.make("snapkv", budget=0.5), ids.shape[1]):
        out = net.generate(ids, max_new_tokens=20, do_sample=False, custom_generate=decoder)
    assert out[0, ids.shape[1]:].tolist() == reference.token_ids
    assert decoder.last.steps <= 19
    with pytest.raises(tokensieve.TokensieveError, match="inside tokensieve.apply"):
        net.generate(ids, max_new_tokens=4, do_sample=False, custom_generate=decoder)


def test_cli_decode_json_stats_and_adjacency_file(smollm2, tmp_path):
    context = tmp_path / "prompt.py"
    context.write_text(prompt("code", 4).context)
    matrix = tmp_path / "adj.pt"
    args = ["generate", "-q", "", "-c", str(context), "--policy", "full", "--budget", "1", "--max-new-tokens", "12",
            "--decode", "recycling", "--adjacency", str(matrix), "--json"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    stats = json.loads(first.output)["stats"]
    assert stats["decode"] == "recycling" and stats["accepted_per_step"] >= 1 and stats["decode_tok_s"] > 0
    assert matrix.exists()
    saved = tokensieve.decode.adjacency.Adjacency.load(matrix, 49152)
    assert bool(saved.written.any())  # the run wrote rows; the next run starts from them
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and json.loads(again.output)["token_ids"] == json.loads(first.output)["token_ids"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--decode", "beam"], "unknown decoder"),
    (["--decode", "lookup", "--draft-length", "0"], "draft-length"),
    (["--decode", "layerskip", "--exit-layer", "99"], "exit layer"),
    (["--decode", "recycling", "--query-agnostic"], "greedy decoding only"),
])
def test_cli_decode_bad_input_is_one_line(smollm2, tmp_path, extra, message):
    context = tmp_path / "c.txt"
    context.write_text("def add(a, b):\n")
    result = CliRunner().invoke(app, ["generate", "-q", "", "-c", str(context), "--policy", "full", "--budget", "1",
                                      "--max-new-tokens", "4", *extra])
    assert result.exit_code == 2 and message in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1


def test_a_decode_bench_cell_measures_greedy_side_by_side(smollm2):
    from tokensieve.bench.cell import Cell, run_cell

    case = {"task": "decode", "workload": "json", "index": 2, "new_tokens": 24}
    row = run_cell(Cell("smollm2-135m", tuple(sorted(case.items())), "lookup", 1.0))
    assert row["status"] == "ok" and row["quality"] == 1.0 and row["case_id"] == "decode/json/2"
    m = row["metrics"]
    assert m["lossless"] and m["greedy_decode_tok_s"] > 0 and m["method_decode_tok_s"] > 0
    assert m["speedup_decode"] == pytest.approx(m["method_decode_tok_s"] / m["greedy_decode_tok_s"], rel=1e-2)
    assert m["verify_cost"] > 0 and m["ceiling"] > 0


@pytest.mark.parametrize("fixture", sweep(["smollm2", "qwen05"], ("smollm2",)))
def test_packed_gemm_logits_equal_atens_within_tolerance_and_trees_stay_lossless(fixture, request):
    """The stated tolerance (core/gemm.py): a 13-token forward's logits within 1e-5 relative (L2) and 1e-3 absolute
    of aten's, the same argmax; fewer than 3 rows take aten itself, bit for bit."""
    import copy

    import torch

    from tokensieve.core.gemm import packed_linears

    net, _ = request.getfixturevalue(fixture)
    model = "smollm2-135m" if fixture == "smollm2" else "qwen2.5-coder-0.5b"
    ids = torch.randint(100, 1000, (1, 150), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        cache = net(input_ids=ids, use_cache=True).past_key_values

        def logits(tokens):
            return net(input_ids=ids[:, :tokens] + 7, cache=copy.deepcopy(cache)).logits[0]

        plain_wide, plain_one = logits(13), logits(1)
        with packed_linears(net) as active:
            fast_wide, fast_one = logits(13), logits(1)
    assert active and not any("forward" in vars(m) for m in net.modules())  # every linear's own forward is back
    assert torch.equal(fast_one, plain_one)
    assert (fast_wide - plain_wide).norm() / plain_wide.norm() < 1e-5
    assert (fast_wide - plain_wide).abs().max() < 1e-3 and torch.equal(fast_wide.argmax(-1), plain_wide.argmax(-1))
    policies = (("full", 1.0), ("snapkv", 0.25)) if fixture == "smollm2" else (("full", 1.0),)
    for policy, budget in policies:
        _same(model, prompt("code", 2), "recycling", policy, budget, 24, DecodeOptions(packed_gemm=True))


def test_greedy_with_packed_linears_prefills_through_them_and_keeps_its_tokens(smollm2, tmp_path, monkeypatch):
    """`generate --packed-gemm` (greedy): every prompt piece of 64 rows multiplies through the prepacked weights,
    the one-token steps keep aten, and the tokens are the plain run's; int8 weights are refused with one line."""
    from tokensieve.core import gemm

    calls = []
    real = gemm.product
    monkeypatch.setattr(gemm, "product", lambda *args: calls.append(args[0].shape[0]) or real(*args))
    context = tmp_path / "context.txt"
    context.write_text("The launch code is 7261. " + "The sky was grey and the sea was calm. " * 40)
    args = ["generate", "-q", "What is the launch code?", "-c", str(context), "--policy", "full", "--budget", "1",
            "--max-new-tokens", "8", "--chunk", "64", "--json"]
    plain = CliRunner().invoke(app, args)
    assert plain.exit_code == 0 and not calls, plain.output
    packed = CliRunner().invoke(app, [*args, "--packed-gemm"])
    assert packed.exit_code == 0, packed.output
    assert json.loads(packed.stdout)["token_ids"] == json.loads(plain.stdout)["token_ids"]
    assert calls and set(calls) <= {64, *range(gemm.FROM_ROWS, 64)}  # prompt pieces only, no one-token step
    refused = CliRunner().invoke(app, [*args, "--packed-gemm", "--weights", "int8"])
    assert refused.exit_code == 2 and refused.stderr.strip().count("\n") == 0, refused.output
    assert "nothing to pack" in refused.stderr
