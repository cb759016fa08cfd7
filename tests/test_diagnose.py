"""Diagnostics on real models: attention mass vs an eager reference, sinks, massive activations, heads, `auto`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tokensieve.core.budget import Budget
from tokensieve.core.cache import SieveCache
from tokensieve.core.hooks import apply
from tokensieve.data.corpus import haystack
from tokensieve.diagnose import compare, inspect_text, load_report
from tokensieve.diagnose.probe import attention_stats, run_probe
from tokensieve.errors import TokensieveError
from tokensieve.kv.auto import weighted_split
from tokensieve.methods import make

CLI = [sys.executable, "-m", "tokensieve.cli"]


def cli(*args):
    return subprocess.run([*CLI, *args], capture_output=True, timeout=600)


def cli_in_process(*args) -> subprocess.CompletedProcess:
    """typer's runner, stdout and stderr apart; the entry point's own process runs in the JSON test."""
    from typer.testing import CliRunner

    from tokensieve.cli import app

    result = CliRunner().invoke(app, list(args))
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout_bytes, result.stderr_bytes)


@pytest.fixture(scope="module")
def smol_report(smollm2):
    model, tok = smollm2
    return inspect_text(model, tok, haystack(tok, 400, offset=20), model_name="smollm2-135m")


@pytest.fixture(scope="module")
def gemma_report(gemma3):
    model, tok = gemma3
    return inspect_text(model, tok, haystack(tok, 400, offset=20), model_name="gemma3-270m")


@pytest.fixture(scope="module")
def smol_report_path(smol_report, tmp_path_factory):
    return smol_report.save(tmp_path_factory.mktemp("inspect") / "report.json")


# --- attention mass == eager attention ------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["smollm2", "gemma3"])
def test_attention_mass_matches_eager_attention(which, request):
    model, tok = request.getfixturevalue(which)
    ids = tok(haystack(tok, 96, offset=3), return_tensors="pt").input_ids
    probe = run_probe(model, ids, block=32)  # several query blocks
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            eager = model(input_ids=ids, output_attentions=True, use_cache=False).attentions
    finally:
        model.set_attn_implementation(previous)
    assert model.config._attn_implementation == previous
    n = ids.shape[1]
    assert len(eager) == len(probe.attention)
    for layer, (ref, got) in enumerate(zip(eager, probe.attention, strict=True)):
        ref_mass = ref[0].float().sum(-2)  # [heads, tokens]: attention received, summed over queries
        torch.testing.assert_close(got.mass / n, ref_mass / n, atol=1e-4, rtol=0, msg=f"layer {layer}")
        ref_entropy = torch.special.entr(ref[0].float()).sum(-1).mean(-1)
        torch.testing.assert_close(got.entropy, ref_entropy, atol=1e-3, rtol=0, msg=f"layer {layer}")


def test_sliding_window_and_softcap_match_a_dense_reference():
    torch.manual_seed(0)
    q, k = torch.randn(4, 50, 8), torch.randn(2, 50, 8)
    got = attention_stats(q, k, scaling=0.3, window=7, softcap=5.0, block=16)
    logits = torch.tanh(torch.einsum("hqd,hsd->hqs", q, k.repeat_interleave(2, 0)) * 0.3 / 5.0) * 5.0
    i, j = torch.arange(50)[:, None], torch.arange(50)[None, :]
    visible = (j <= i) & (j > i - 7)
    probs = torch.softmax(logits.masked_fill(~visible, float("-inf")), -1)
    torch.testing.assert_close(got.mass, probs.sum(1), atol=1e-5, rtol=0)
    torch.testing.assert_close(got.visible, visible.sum(0).float())
    assert got.visible[0] == 7 and got.visible[-1] == 1


# --- the report on real prose ---------------------------------------------------------------------------------

def test_smollm2_report_names_primary_and_secondary_sinks(smol_report):
    r = smol_report
    first = next(s for s in r.sinks if s.position == 0)
    assert first.kind == "primary" and not r.bos
    assert first.fades == r.n_layers - 1 and first.peak_score > 0.4  # holds to the top, draws most attention
    secondary = [s for s in r.sinks if s.kind == "secondary"]
    assert secondary, "SmolLM2 has secondary sinks in its lower-middle layers on prose"
    for s in secondary:
        assert s.position >= r.settings.sinks.primary_span
        assert 0 < s.appears <= s.fades < r.n_layers - 1  # a band that fades before the top
        assert len(s.layers) >= r.settings.sinks.min_layers
        assert s.massive, "secondary sinks carry massive activations"
    # the primary sink carries the largest activation of the upper layers (Sun et al.)
    upper = r.activations[r.n_layers // 2]
    assert upper.ratio > 1000 and upper.tokens == [0] and upper.on_sinks


def test_gemma3_report_bos_is_the_primary_sink(gemma_report):
    r = gemma_report
    assert r.bos and r.token_texts[0] == "<bos>"
    bos = r.sinks[0]
    assert bos.position == 0 and bos.kind == "primary"
    full = [i for i, t in enumerate(r.layer_types) if t == "full_attention"]
    assert full and set(full) <= set(bos.layers)
    assert all(a.ratio >= r.settings.massive_ratio and 0 in a.tokens for a in r.activations)


def test_heads_dormant_iff_sink_share_and_comparison(smol_report, smollm2):
    r = smol_report
    assert len(r.heads) == r.n_layers * r.n_heads
    assert all(h.dormant == (h.sink_fraction >= r.settings.dormant_at) for h in r.heads)
    assert all(0 <= h.sink_fraction <= 1 + 1e-5 for h in r.heads)
    assert any(h.dormant for h in r.heads) and not all(h.dormant for h in r.heads)
    model, tok = smollm2
    same = inspect_text(model, tok, haystack(tok, 400, offset=20))
    assert compare(same, r)["switched"] == []
    code = inspect_text(model, tok, Path(__file__).read_text()[:1500])
    diff = compare(code, r)
    assert diff["to_dormant"] + diff["to_active"] == len(diff["switched"])
    assert diff["dormant"] == [sum(h.dormant for h in code.heads), sum(h.dormant for h in r.heads)]


def test_report_json_roundtrip(smol_report_path, smol_report):
    data = load_report(smol_report_path)
    assert data["primary_sinks"] == [s.position for s in smol_report.sinks if s.kind == "primary"]
    assert len(data["layers"]) == data["n_layers"] == 30
    json.dumps(data)


def test_bad_text_is_refused(smollm2):
    model, tok = smollm2
    with pytest.raises(TokensieveError, match="empty"):
        inspect_text(model, tok, "  \n ")
    from tokensieve.diagnose import Settings

    with pytest.raises(TokensieveError, match="limit is 16"):
        inspect_text(model, tok, haystack(tok, 100), settings=Settings(max_tokens=16))


# --- auto ------------------------------------------------------------------------------------------------------

@given(st.lists(st.floats(0, 1), min_size=1, max_size=40), st.integers(0, 64), st.integers(0, 500),
       st.integers(0, 500))
def test_weighted_split_keeps_total_and_bounds(weights, floor, extra, span):
    ceiling = floor + span
    total = floor + min(extra, span)
    sizes = weighted_split(total, weights, floor, ceiling)
    assert sum(sizes) == total * len(weights)
    assert all(floor <= s <= ceiling for s in sizes)


def test_auto_reads_sinks_and_gives_dormant_layers_less(smol_report_path, smol_report, smollm2):
    auto = make("auto", Budget(0.25), report=str(smol_report_path))
    primary = [s.position for s in smol_report.sinks if s.kind == "primary"]
    assert auto.budget.sinks == max(primary) + 1
    caps = auto.capacities(1000, 30)
    assert sum(caps) == 250 * 30 and min(caps) >= auto.budget.sinks + auto.budget.window
    dormancy = [auto.plan.dormancy[i] for i in range(30)]
    most, least = dormancy.index(max(dormancy)), dormancy.index(min(dormancy))
    assert caps[most] < 250 < caps[least]
    # on the real model: each layer keeps exactly its budget, and a multi-token continuation after
    # non-uniform eviction equals feeding it token by token (the mask is fitted per layer)
    model, tok = smollm2
    ids = tok(haystack(tok, 620, offset=5), return_tensors="pt").input_ids[:, :620]
    ctx, cont = ids[:, :600], ids[:, 600:]
    outs = []
    for stepwise in (False, True):
        cache = SieveCache(model.config)
        with torch.no_grad(), apply(model, auto, prompt_tokens=600) as session:
            model(input_ids=ctx, past_key_values=cache, use_cache=True, logits_to_keep=1)
            assert cache.stored_tokens() == auto.capacities(600, 30)
            session.compress = False
            if stepwise:
                outs.append(torch.cat([model(input_ids=cont[:, i : i + 1], past_key_values=cache).logits[0]
                                       for i in range(cont.shape[1])]))
            else:
                outs.append(model(input_ids=cont, past_key_values=cache).logits[0])
    assert len(set(auto.capacities(600, 30))) > 1
    torch.testing.assert_close(outs[0], outs[1], atol=2e-4, rtol=1e-4)


def test_auto_fails_loudly(smol_report_path, tmp_path):
    with pytest.raises(TokensieveError, match="needs report"):
        make("auto", 0.25)
    with pytest.raises(TokensieveError, match="cannot read"):
        make("auto", 0.25, report=str(tmp_path / "missing.json"))
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(TokensieveError, match="not a tokensieve inspect report"):
        make("auto", 0.25, report=str(tmp_path / "x.json"))
    with pytest.raises(TokensieveError, match="not a KV policy"):
        make("auto", 0.25, report=str(smol_report_path), scorer="auto")
    with pytest.raises(TokensieveError, match="covers 30 compressed layers"):
        make("auto", 0.25, report=str(smol_report_path)).capacities(1000, 3)  # e.g. Gemma 3's 3 full layers


# --- CLI -------------------------------------------------------------------------------------------------------

def test_cli_inspect_writes_json_and_readable_pngs(tmp_path):
    import matplotlib.image as mpimg

    result = cli("inspect", "-m", "smollm2-135m", "--tokens", "200", "--json", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr.decode()
    printed = json.loads(result.stdout)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert printed["sinks"] == saved["sinks"] and saved["primary_sinks"][0] == 0
    for name in ("sinks.png", "heads.png", "activations.png"):
        image = mpimg.imread(tmp_path / name)
        assert image.shape[0] > 400 and image.shape[1] > 900


@pytest.mark.parametrize("case", ["empty", "too-long", "non-utf8", "unsupported"])
def test_cli_inspect_bad_input_is_one_line_and_exit_2(case, tmp_path, smollm2):
    doc = tmp_path / "doc.txt"
    args = ["--text-file", str(doc), "--out", str(tmp_path / "out")]
    expected = {"empty": "empty", "too-long": "the limit is 20", "non-utf8": "not valid UTF-8",
                "unsupported": "decoder stack"}[case]
    doc.write_text("A few words of prose. " * 20)
    if case == "empty":
        doc.write_text("   \n")
    elif case == "too-long":
        args += ["--max-tokens", "20"]
    elif case == "non-utf8":
        doc.write_bytes(b"caf\xe9 \xff\xfe")
    else:  # a causal LM that is not attention-based
        from transformers import MambaConfig, MambaForCausalLM

        folder = tmp_path / "mamba"
        MambaForCausalLM(MambaConfig(vocab_size=49152, hidden_size=16, num_hidden_layers=1)).save_pretrained(folder)
        smollm2[1].save_pretrained(folder)
        args += ["--model", str(folder)]
    result = cli_in_process("inspect", *args)
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert expected in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
