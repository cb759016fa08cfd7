"""A soak of the server: mixed traffic for a fixed time against `tokensieve serve` in its own process, with the
server's RSS and KV pool sampled throughout.

Each client loops until the time is up, drawing (from a seeded generator) a policy and budget, a prompt of 100 to
800 tokens, 4 to 32 new tokens, completions or chat, streaming or not, and sometimes hanging up: a streaming client
after its first chunk, a plain one by a short read timeout. Every request ends in exactly one outcome:
- `answered`: 200 and the whole answer (a finish reason, and `[DONE]` for a stream);
- `refused`: 429 with Retry-After (the pool and queue shedding load);
- `hung_up`: the client left on purpose;
- `lost`: anything else (a 5xx, another 4xx, a dropped connection, a cut stream). The goal is none.

At the end the clients stop, the pool must drain to 0 bytes, and the server gets SIGTERM and must exit 0.
"""

from __future__ import annotations

import json
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import httpx
import psutil
from scipy import stats

from tokensieve.data.corpus import essays, haystack

MIX = (("full", 1.0), ("snapkv", 0.25), ("tokenselect", 0.125), ("streaming_llm", 0.25), ("tova", 0.25),
       ("knorm", 0.5), ("hisa", 0.25))
HANG_UP = 0.15  # share of requests whose client leaves early


@dataclass
class SoakConfig:
    model: str = "smollm2-135m"
    minutes: float = 20.0
    clients: int = 6
    pool_mb: float = 120.0
    max_queue: int = 4
    max_batch: int = 8
    sample_s: float = 5.0
    warmup_minutes: float | None = None  # default: a tenth of the run, at least 0.2 minutes
    seed: int = 0

    @property
    def warmup_s(self) -> float:
        minutes = self.warmup_minutes if self.warmup_minutes is not None else max(0.2, self.minutes / 10)
        return minutes * 60


@dataclass
class Sample:
    t: float
    rss: int
    kv_in_use: int
    running: int
    queued: int


@dataclass
class SoakResult:
    config: dict
    outcomes: dict[str, int]
    lost: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    drained_kv_bytes: int | None = None
    exit_code: int | None = None

    def memory(self, warmup_s: float) -> dict:
        """RSS and pool after warm-up: level at start and end (medians of equal windows), and the RSS trend."""
        after = [s for s in self.samples if s.t >= warmup_s]
        if len(after) < 6:
            return {}
        window = max(3, len(after) // 10)
        start, end = after[:window], after[-window:]
        level, last = statistics.median(s.rss for s in start), statistics.median(s.rss for s in end)
        fit = stats.linregress([s.t / 60 for s in after], [s.rss / 2**20 for s in after])
        return {"rss_after_warmup_mib": level / 2**20, "rss_end_mib": last / 2**20,
                "rss_end_vs_warmup": last / level - 1,
                "rss_slope_mib_per_min": fit.slope, "rss_slope_ci95": 1.96 * fit.stderr,
                "kv_mean_start_mib": statistics.mean(s.kv_in_use for s in start) / 2**20,
                "kv_mean_end_mib": statistics.mean(s.kv_in_use for s in end) / 2**20,
                "kv_peak_mib": max(s.kv_in_use for s in self.samples) / 2**20,
                "samples_after_warmup": len(after), "window_samples": window}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(config: SoakConfig, port: int) -> subprocess.Popen:
    command = [sys.executable, "-c", "from tokensieve.cli import app; app()", "serve", "--model", config.model,
               "--port", str(port), "--kv-pool-mb", str(config.pool_mb), "--max-queue", str(config.max_queue),
               "--max-batch", str(config.max_batch), "--drain-timeout", "120"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited at start: {proc.stderr.read().strip()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the server did not answer /health within 180 s")


def read_stream(reply: httpx.Response, chat: bool, hang_up: bool) -> str:
    finish, done = None, False
    for line in reply.iter_lines():
        if not line.startswith("data: "):
            continue
        if hang_up:
            return "hung_up"  # leaving here closes the connection after the first chunk
        if line == "data: [DONE]":
            done = True
            continue
        payload = json.loads(line[6:])
        if "error" in payload:
            return "lost"
        for choice in payload["choices"]:
            finish = choice.get("finish_reason") or finish
    return "answered" if done and finish in ("stop", "length") else "lost"


def one_request(url: str, model: str, rng: random.Random, prompt: str) -> tuple[str, str]:
    """(outcome, detail) of one randomly drawn request."""
    policy, budget = rng.choice(MIX)
    chat, stream, hang_up = rng.random() < 0.3, rng.random() < 0.5, rng.random() < HANG_UP
    body: dict = {"model": model, "max_tokens": rng.randint(4, 32), "temperature": rng.choice([0, 0.7]),
                  "tokensieve": {"policy": policy, "budget": budget}}
    if chat:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    path = "/v1/chat/completions" if chat else "/v1/completions"
    timeout = httpx.Timeout(600, read=0.5) if hang_up and not stream else httpx.Timeout(600)
    what = f"{policy}:{budget} {'chat' if chat else 'completion'}{' stream' if stream else ''}"
    try:
        if stream:
            with httpx.stream("POST", url + path, json={**body, "stream": True}, timeout=timeout) as reply:
                if reply.status_code != 200:
                    reply.read()
                    return status_outcome(reply), what
                return read_stream(reply, chat, hang_up), what
        reply = httpx.post(url + path, json=body, timeout=timeout)
    except httpx.ReadTimeout:
        return ("hung_up" if hang_up else "lost"), what
    except httpx.TransportError as error:
        return "lost", f"{what}: {error!r}"
    if reply.status_code != 200:
        return status_outcome(reply), what
    choice = reply.json()["choices"][0]
    return ("answered" if choice["finish_reason"] in ("stop", "length") else "lost"), what


def status_outcome(reply: httpx.Response) -> str:
    if reply.status_code == 429 and int(reply.headers.get("retry-after", "0")) >= 1:
        return "refused"
    return "lost"


def soak(config: SoakConfig, progress: Callable[[str], None] = print) -> SoakResult:
    from transformers import AutoTokenizer

    from tokensieve.models import resolve

    tokenizer = AutoTokenizer.from_pretrained(resolve(config.model))
    essay_count = len(essays())
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(config, port)
    process = psutil.Process(server.pid)
    result = SoakResult(config=asdict(config), outcomes={})
    outcomes: Counter[str] = Counter()
    lock, stop = threading.Lock(), threading.Event()
    started = time.monotonic()
    deadline = started + config.minutes * 60

    def client(index: int) -> None:
        rng = random.Random(config.seed * 1000 + index)
        while time.monotonic() < deadline:
            prompt = haystack(tokenizer, rng.randint(100, 800), offset=rng.randrange(essay_count))
            outcome, detail = one_request(url, config.model, rng, prompt)
            with lock:
                outcomes[outcome] += 1
                if outcome == "lost":
                    result.lost.append(detail)
            if outcome == "refused":
                time.sleep(rng.uniform(0.2, 1.0))  # a polite client backs off a little

    def sampler() -> None:
        next_report = started + 60
        while not stop.is_set():
            health = httpx.get(url + "/health", timeout=30).json()
            now = time.monotonic()
            result.samples.append(Sample(now - started, process.memory_info().rss, health["kv_bytes_in_use"],
                                         health["running"], health["queued"]))
            if now >= next_report:
                next_report += 60
                with lock:
                    progress(f"{(now - started) / 60:.0f} min: {dict(outcomes)}, RSS "
                             f"{result.samples[-1].rss / 2**20:.0f} MiB")
            stop.wait(config.sample_s)

    try:
        watcher = threading.Thread(target=sampler, daemon=True)
        watcher.start()
        clients = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(config.clients)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        stop.set()
        watcher.join()
        idle_by = time.monotonic() + 60
        while time.monotonic() < idle_by:
            health = httpx.get(url + "/health", timeout=30).json()
            if health["kv_bytes_in_use"] == 0 and health["running"] == 0:
                break
            time.sleep(0.2)
        result.drained_kv_bytes = health["kv_bytes_in_use"]
        server.send_signal(signal.SIGTERM)
        result.exit_code = server.wait(150)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    result.outcomes = dict(outcomes)
    return result


def markdown(result: SoakResult, command: str) -> str:
    config = SoakConfig(**result.config)
    memory = result.memory(config.warmup_s)
    total = sum(result.outcomes.values())
    lines = [f"`{command}`", "",
             f"{config.clients} clients for {config.minutes:g} min on {config.model}, pool {config.pool_mb:g} MiB, "
             f"max-queue {config.max_queue}, max-batch {config.max_batch}, seed {config.seed}.", "",
             "| requests | answered | refused (429) | hung up | lost |", "|---|---|---|---|---|",
             f"| {total} | {result.outcomes.get('answered', 0)} | {result.outcomes.get('refused', 0)} | "
             f"{result.outcomes.get('hung_up', 0)} | {result.outcomes.get('lost', 0)} |", ""]
    if memory:
        lines += ["| measure | value |", "|---|---|",
                  f"| RSS after warm-up ({config.warmup_s / 60:g} min) | {memory['rss_after_warmup_mib']:.0f} MiB |",
                  f"| RSS at the end | {memory['rss_end_mib']:.0f} MiB ({memory['rss_end_vs_warmup']:+.1%}) |",
                  f"| RSS trend after warm-up | {memory['rss_slope_mib_per_min']:+.2f} "
                  f"± {memory['rss_slope_ci95']:.2f} MiB/min |",
                  f"| KV pool in use, mean of first / last window | {memory['kv_mean_start_mib']:.1f} / "
                  f"{memory['kv_mean_end_mib']:.1f} MiB (peak {memory['kv_peak_mib']:.1f}) |",
                  f"| KV pool in use once idle | {result.drained_kv_bytes} bytes |",
                  f"| exit code after SIGTERM | {result.exit_code} |", ""]
    if result.lost:
        lines += ["Lost requests:", *[f"- {detail}" for detail in result.lost[:20]], ""]
    return "\n".join(lines)
