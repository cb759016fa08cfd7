"""Prompt compression (src/tokensieve/prompt): exact ratios, the methods on real SmolLM2, the CLI, the peer."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokensieve import compress
from tokensieve.bench.peers import llmlingua
from tokensieve.data.corpus import haystack
from tokensieve.data.needle import needle_case
from tokensieve.errors import TokensieveError
from tokensieve.prompt.fit import PROTECT, fit
from tokensieve.prompt.units import count, split

pytestmark = pytest.mark.real
CLI = [sys.executable, "-m", "tokensieve.cli"]
UNICODE = "Ünïcødé — 日本語のテキスト, emoji 🙂🚀, code `x = f(y) ** 2;`\n\n"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Shared 2-core machines: one torch thread avoids OpenMP oversubscription (3x slower otherwise)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tok(smollm2):
    return smollm2[1]


@pytest.fixture(scope="module")
def essay(tok):
    return haystack(tok, 8200)


def _within(tokens_out: int, target: int) -> bool:
    return abs(tokens_out - target) <= 0.02 * target


def _is_subsequence(short: str, long: str) -> bool:
    it = iter(long)
    return all(c in it for c in short)


def _adversarial_scores(n: int, seed: int) -> torch.Tensor:
    """Alternating keep/drop (maximal re-tokenisation drift) with random tie-breaks."""
    g = torch.Generator().manual_seed(seed)
    return (torch.arange(n) % 2).float() + 0.1 * torch.rand(n, generator=g)


@pytest.mark.parametrize("length", [100, 137, 256, 400, 777, 1000, 1600, 2500, 4000, 6000, 8000])
@pytest.mark.parametrize("ratio", [0.1, 0.33, 0.5, 0.8])
def test_fit_hits_the_ratio_after_retokenisation(tok, essay, length, ratio):
    ids = tok(essay, add_special_tokens=False).input_ids[:length]
    text = tok.decode(ids) + (UNICODE if length % 2 else "")
    units = split(tok, text)
    target = round(ratio * units.ids.shape[0])
    result = fit(tok, units, _adversarial_scores(len(units), length), target)
    assert result.tokens == count(tok, result.text)
    assert _within(result.tokens, target), (result.tokens, target)
    assert _is_subsequence(result.text, text)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.integers(0, 5000), length=st.integers(100, 1500), ratio=st.floats(0.05, 1.0),
       extra=st.text(min_size=0, max_size=80), seed=st.integers(0, 1000))
def test_fit_property(tok, essay, start, length, ratio, extra, seed):
    text = essay[start:start + 5 * length] + extra
    units = split(tok, text)
    assert units.join(list(range(len(units)))) == text  # units cover every character exactly once
    target = max(1, round(ratio * units.ids.shape[0]))
    scores = torch.rand(len(units), generator=torch.Generator().manual_seed(seed))
    result = fit(tok, units, scores, target)
    assert _within(result.tokens, target) or abs(result.tokens - target) <= 1
    assert result.tokens == count(tok, result.text)


def test_fit_keeps_protected_units(tok):
    units = split(tok, "Keep this. " + "filler words here " * 20)
    scores = torch.zeros(len(units))
    scores[:3] = PROTECT
    result = fit(tok, units, scores, 10)
    assert result.text.startswith("Keep this.")


@pytest.mark.parametrize("method", ["surprisal", "gradient", "rollout"])
@pytest.mark.parametrize("length", [120, 700])
def test_compress_end_to_end_ratio(tok, method, length):
    case = needle_case(tok, length, 0.5)
    out = compress(case.context, question=case.question, ratio=0.5, method=method)
    assert abs(out.ratio_achieved / 0.5 - 1) <= 0.02
    assert out.tokens_out == count(tok, out.compressed) + count(tok, case.question)
    assert _is_subsequence(out.compressed, case.context)
    assert out.seconds > 0


def test_token_target_and_full_ratio(tok):
    text = haystack(tok, 300)
    assert compress(text, ratio=1.0).compressed == text
    out = compress(text, tokens=120)
    assert out.target_tokens == 120 and _within(out.tokens_out, 120)


def test_surprisal_keeps_the_planted_fact(tok):
    """An out-of-place fact is surprising, so LLMLingua-style scoring keeps its answer at 2x."""
    case = needle_case(tok, 1000, 0.5)
    out = compress(case.context, question=case.question, ratio=0.5, method="surprisal")
    assert case.expected in out.compressed


def test_surprisal_drops_a_repeated_paragraph_first(smollm2, tok):
    """A paragraph's second copy is predictable from the first (in-context copying): lower surprisal."""
    from tokensieve.prompt.surprisal import token_surprisal

    paragraph = haystack(tok, 150)
    ids = tok(paragraph + " " + paragraph, add_special_tokens=False, return_tensors="pt").input_ids[0]
    scores = token_surprisal(smollm2[0], ids, window=64)
    half = ids.shape[0] // 2
    assert scores[half + 10:].mean() < 0.5 * scores[10:half].mean()


def test_rollout_puts_mass_on_the_first_token(smollm2, tok):
    """Rollout keeps the residual share at every layer and SmolLM2 sinks attention on token 0."""
    from tokensieve.prompt.rollout import token_scores

    ids = tok(haystack(tok, 200), add_special_tokens=False, return_tensors="pt").input_ids[0]
    scores = token_scores(smollm2[0], ids, None, window=256)
    assert int(scores.argmax()) == 0
    assert smollm2[0].config._attn_implementation == "sdpa"  # restored


def test_leave_one_out_finds_the_fact(smollm2, tok):
    """Replacing a span of the planted fact sentence hurts the answer most."""
    from tokensieve.prompt.perturbation import SPAN, token_scores

    case = needle_case(tok, 200, 0.5)
    ids = tok(case.context, add_special_tokens=False, return_tensors="pt").input_ids[0]
    suffix = case.prompt_suffix()
    q = tok(suffix, add_special_tokens=False, return_tensors="pt").input_ids[0]
    scores = token_scores(smollm2[0], tok, ids, q, window=512)
    def tokens_before(marker: str) -> int:
        prefix = case.context[:case.context.index(marker)]
        return tok(prefix, add_special_tokens=False, return_tensors="pt").input_ids.shape[1]

    first, last = tokens_before("The secret passkey"), tokens_before("7294") + 3
    best = int(scores.argmax()) // SPAN
    assert first // SPAN <= best <= last // SPAN, (best, first, last)


def test_reagent_runs_at_exact_ratio(tok):
    case = needle_case(tok, 150, 0.3)
    out = compress(case.context, question=case.question, ratio=0.6, method="reagent")
    assert abs(out.ratio_achieved / 0.6 - 1) <= 0.02


@pytest.mark.parametrize("kwargs, message", [
    ({"ratio": 0.0}, "outside (0, 1]"), ({"ratio": 1.5}, "outside (0, 1]"), ({"ratio": float("nan")}, "outside"),
    ({"method": "magic"}, "unknown compression method"), ({"precision": "int3"}, "unknown precision"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(TokensieveError, match=re.escape(message)):
        compress("Some text to compress.", **{"ratio": 0.5, **kwargs})


def test_question_longer_than_budget(tok):
    with pytest.raises(TokensieveError, match="does not fit the budget"):
        compress("short context " * 5, question="a very long question " * 40, ratio=0.5)
    with pytest.raises(TokensieveError, match="empty"):
        compress("  \n ", ratio=0.5)


def _cli(args: list[str], stdin: bytes) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run(CLI + args, input=stdin, capture_output=True, env=env, timeout=180)


def _cli_in_process(args: list[str], stdin: bytes) -> subprocess.CompletedProcess:
    """typer's runner, stdout and stderr apart; the entry point's own process runs in `test_cli_json`."""
    from typer.testing import CliRunner

    from tokensieve.cli import app

    result = CliRunner().invoke(app, args, input=stdin, env={"COLUMNS": "200"})
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout_bytes, result.stderr_bytes)


@pytest.mark.parametrize("args, stdin, message", [
    (["--ratio", "0"], b"some text", "outside (0, 1]"),
    (["--ratio", "1.2"], b"some text", "outside (0, 1]"),
    ([], b"   \n", "empty"),
    ([], b"caf\xe9 \xff\xfe", "not valid UTF-8"),
    (["--question", "why " * 60], b"short text here.", "does not fit the budget"),
])
def test_cli_bad_input_is_one_error_line(args, stdin, message):
    proc = _cli_in_process(["compress", *args], stdin)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.decode().splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr.decode()
    assert proc.stdout == b""


def test_cli_json(tok):
    text = haystack(tok, 200)
    proc = _cli(["compress", "--ratio", "0.4", "--json", "-q", "What is this about?"], text.encode())
    assert proc.returncode == 0, proc.stderr.decode()
    data = json.loads(proc.stdout)
    assert {"compressed", "tokens_in", "tokens_out", "ratio_achieved", "seconds"} <= data.keys()
    assert abs(data["ratio_achieved"] / 0.4 - 1) <= 0.02
    assert data["tokens_out"] == count(tok, data["compressed"]) + count(tok, "What is this about?")


def test_peer_crash_is_peer_failed():
    with pytest.raises(llmlingua.PeerFailed, match="died"):
        llmlingua.Worker("smollm2-135m", python=Path("/bin/false"))


def test_bench_turns_a_missing_peer_into_failed_rows(tmp_path, monkeypatch):
    from tokensieve.bench import prompt_bench as bench

    monkeypatch.setenv("TOKENSIEVE_LLMLINGUA_VENV", str(tmp_path / "nowhere"))
    report = bench.run_bench("smollm2-135m", ["llmlingua"], [0.5], [150], [0.5], [0], 1, 1, "test")
    failed = [r for r in report.rows if r.method == "llmlingua"]
    assert len(failed) == 2 and all(r.score is None and "not found" in r.error for r in failed)
    full = [r for r in report.rows if r.method == "full"]
    assert [r.score for r in full] == [1.0, 1.0]  # needle found, fidelity top-1 of the context with itself
    assert "llmlingua" in bench.markdown(report) and bench.write(report, tmp_path)[0].exists()


@pytest.mark.peers("llmlingua")
def test_llmlingua_peer_compresses(tok):
    text = haystack(tok, 300)
    worker = llmlingua.Worker("smollm2-135m", threads=1)
    try:
        out = worker.compress(text, 150)
    finally:
        worker.close()
    assert worker.versions["transformers"].startswith("4.46")
    assert 0 < count(tok, out["compressed"]) < count(tok, text) and out["seconds"] > 0
