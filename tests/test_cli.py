"""The CLI as a user meets it: bad input gives one clear line and exit 2, out of memory one line and exit 1;
--json keeps its contract."""

import json
import subprocess
import sys

import pytest
import torch
import typer
from typer.testing import CliRunner

from tokensieve.cli import app
from tokensieve.commands.common import guarded
from tokensieve.errors import ResourceError, TokensieveError

CLI = [sys.executable, "-m", "tokensieve.cli"]


def run(*args, stdin=None) -> subprocess.CompletedProcess:
    """The command in this process through typer's runner (stdout and stderr apart, as a shell sees them): the
    same code as the installed entry point, without a 5 s interpreter start per case. The entry point itself runs
    as a real process in `test_a_real_process_keeps_stdout_clean_and_exits_2` and the JSON contract test."""
    result = CliRunner().invoke(app, list(args), input=stdin)
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout_bytes, result.stderr_bytes)


def test_a_real_process_keeps_stdout_clean_and_exits_2(doc):
    result = subprocess.run([*CLI, "generate", "--context-file", str(doc), "-q", "what?", "--budget", "1.5"],
                            capture_output=True, timeout=600)
    stderr = result.stderr.decode()
    assert result.returncode == 2 and result.stdout == b"", stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "(0, 1]" in lines[0], stderr


@pytest.fixture(scope="module")
def doc(tmp_path_factory):
    path = tmp_path_factory.mktemp("docs") / "doc.txt"
    path.write_text("The secret passkey for the blue door is 7294. " + "Essays are long. " * 60)
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "1.5"], "(0, 1]"),
        (["--budget", "0"], "outside (0, 1]"),
        (["--budget", "10"], "below sinks + window"),
        (["--policy", "nope"], "unknown policy"),
        (["--model", "nope"], "unknown model"),
        (["--chunk", "0"], "chunk"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, doc):
    result = run("generate", "--context-file", str(doc), "-q", "what?", *args)
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert message in stderr
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert result.stdout == b""


def test_empty_context_and_too_long_context(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("   \n")
    result = run("generate", "--context-file", str(empty), "-q", "what?")
    assert result.returncode == 2 and "context is empty" in result.stderr.decode()
    long = tmp_path / "long.txt"
    long.write_text("word " * 9000)
    result = run("generate", "--context-file", str(long), "-q", "what?")
    assert result.returncode == 2 and "exceeds the model's maximum" in result.stderr.decode()


def test_non_utf8_and_missing_file(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\xfa not text")
    result = run("generate", "--context-file", str(bad), "-q", "what?")
    assert result.returncode == 2 and "UTF-8" in result.stderr.decode()
    result = run("generate", "--context-file", str(tmp_path / "missing.txt"), "-q", "what?")
    assert result.returncode == 2 and "Traceback" not in result.stderr.decode()


def test_directory_that_is_not_a_causal_lm(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": 32, "num_hidden_layers": 1,
         "num_attention_heads": 2, "intermediate_size": 64, "vocab_size": 100}))
    doc = tmp_path / "d.txt"
    doc.write_text("hello there")
    result = run("generate", "--model", str(tmp_path), "--context-file", str(doc), "-q", "what?")
    assert result.returncode == 2 and "not a causal language model" in result.stderr.decode()


def test_json_contract_on_the_real_model(doc):
    args = ["generate", "--context-file", str(doc), "-q", "What is the secret passkey for the blue door?",
            "--answer-prefix", "The secret passkey for the blue door is", "--policy", "snapkv",
            "--budget", "0.5", "--chunk", "128", "--max-new-tokens", "6", "--json"]
    result = subprocess.run([*CLI, *args], capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr.decode()
    payload = json.loads(result.stdout)
    stats = payload["stats"]
    for key in ("prefill_s", "decode_tok_s", "peak_rss_mb", "kv_bytes_full", "kv_bytes_kept", "kept_tokens"):
        assert key in stats
    assert "7294" in payload["answer"]
    assert stats["kv_bytes_kept"] < stats["kv_bytes_full"]
    assert len(stats["kept_tokens"]) == 30


OOM = [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"), MemoryError(),
       RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough memory: out of memory"),
       ResourceError("out of memory loading m")]


def _invoke(error: BaseException):
    app = typer.Typer()

    @app.command()
    @guarded
    def boom() -> None:
        raise error

    return CliRunner().invoke(app, [])


@pytest.mark.parametrize("error", OOM, ids=lambda e: type(e).__name__)
def test_out_of_memory_is_one_line_and_exit_1(error):
    result = _invoke(error)
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: out of memory"), result.output


def test_bad_input_stays_exit_2_and_a_bug_keeps_its_traceback():
    result = _invoke(TokensieveError("budget 3 is outside (0, 1]"))
    assert result.exit_code == 2 and result.output.strip() == "error: budget 3 is outside (0, 1]"
    result = _invoke(RuntimeError("The size of tensor a (5) must match the size of tensor b (4)"))
    assert isinstance(result.exception, RuntimeError)  # not disguised as an input error


def test_generate_out_of_memory_while_loading_exits_1(tmp_path, monkeypatch, doc):
    from transformers import AutoModelForCausalLM, LlamaConfig

    LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                architectures=["LlamaForCausalLM"]).save_pretrained(tmp_path)

    def from_pretrained(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", from_pretrained)
    result = CliRunner().invoke(app, ["generate", "--model", str(tmp_path), "--context-file", str(doc), "-q", "what?"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: out of memory loading") and len(result.output.strip().splitlines()) == 1


def _commands(group, path=()):
    import click

    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name)


def test_help_leaves_room_for_descriptions_at_80_columns():
    """Piped or in an 80-column terminal, every command's option descriptions get at least 30 columns."""
    import typer.main

    group = typer.main.get_command(app)
    narrow = []
    for path in _commands(group):
        text = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, terminal_width=80).output
        for line in text.splitlines():
            if line.startswith("│") and " --" in line and ">" in line:
                after = line.index(">") + 1
                start = after + len(line[after:]) - len(line[after:].lstrip())
                if 80 - start < 30:
                    narrow.append(f"{' '.join(path)}: {line.strip()}")
    assert narrow == [], "\n".join(narrow)
