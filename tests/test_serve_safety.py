"""The server under stress, on SmolLM2 over loopback: shutdown with nothing lost, overload shed as 429s, and storms
of clients that hang up. `tokensieve serve` runs as a real process where a signal is the point."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import openai
import pytest

try:
    import httpx2 as httpx  # the HTTP client openai >= 3 ships with
except ImportError:
    import httpx

from tokensieve.data.corpus import haystack
from tokensieve.models import cached_load
from tokensieve.serve.server import ServeConfig, ServerThread, build_app

pytestmark = pytest.mark.real
MODEL = "smollm2-135m"


@pytest.fixture(scope="module")
def tokenizer():
    return cached_load(MODEL)[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serve_process(*options: str):
    """`tokensieve serve` as its own process, yielded once /health answers; killed if a test leaves it running."""
    port = free_port()
    cli = [sys.executable, "-c", "from tokensieve.cli import app; app()"]
    proc = subprocess.Popen([*cli, "serve", "--port", str(port), *options], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.url = url
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def stream_completion(url: str, body: dict, first_chunk: threading.Event, result: dict) -> None:
    """A streaming completion read to its end: result gets the text, finish reason and whether [DONE] came."""
    text, finish, done = "", None, False
    try:
        with httpx.stream("POST", url + "/v1/completions", json={**body, "stream": True}, timeout=300) as reply:
            result["status"] = reply.status_code
            for line in reply.iter_lines():
                first_chunk.set()
                if line == "data: [DONE]":
                    done = True
                elif line.startswith("data: "):
                    choice = json.loads(line[6:])["choices"][0]
                    text += choice["text"]
                    finish = choice["finish_reason"] or finish
    except httpx.TransportError:  # the server went away mid-answer (the tests that kill it expect this)
        pass
    result.update(text=text, finish=finish, done=done)


@pytest.mark.slow  # a load run
def test_sigterm_drains_what_is_in_flight_refuses_what_is_new_and_exits_0(tokenizer):
    prompt = haystack(tokenizer, 300)
    body = {"model": MODEL, "prompt": prompt, "max_tokens": 48, "temperature": 0}
    with serve_process("--drain-timeout", "120") as server:
        reference = httpx.post(server.url + "/v1/completions", json=body, timeout=300).json()["choices"][0]
        first, streamed, plain = threading.Event(), {}, {}
        streaming = threading.Thread(target=stream_completion, args=(server.url, body, first, streamed))
        queued = threading.Thread(target=lambda: plain.update(reply=httpx.post(
            server.url + "/v1/completions", json=body, timeout=300)))
        streaming.start()
        queued.start()
        assert first.wait(120)
        server.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # the handler runs between two of uvicorn's ticks
        refused = httpx.post(server.url + "/v1/completions", json=body, timeout=30)
        health = httpx.get(server.url + "/health", timeout=30)
        streaming.join(300)
        queued.join(300)
        code = server.wait(60)
        out, err = server.communicate()
    assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "shutting_down"
    assert health.status_code == 503 and health.json()["status"] == "draining"
    # both requests admitted before the signal were answered in full, exactly as before it
    assert streamed["status"] == 200 and streamed["done"]
    assert (streamed["text"], streamed["finish"]) == (reference["text"], reference["finish_reason"])
    assert plain["reply"].status_code == 200 and plain["reply"].json()["choices"][0]["text"] == reference["text"]
    assert code == 0, err
    assert re.search(r"SIGTERM: draining [12] requests in flight", err) and "drained" in out


@pytest.mark.slow
def test_a_second_sigterm_exits_at_once_and_a_drain_timeout_exits_1(tokenizer):
    body = {"model": MODEL, "prompt": haystack(tokenizer, 200), "max_tokens": 2000, "temperature": 0}
    for timeout, signals, expected in (("120", 2, 128 + signal.SIGTERM), ("1", 1, 1)):
        with serve_process("--drain-timeout", timeout) as server:
            first, result = threading.Event(), {}
            threading.Thread(target=stream_completion, args=(server.url, body, first, result), daemon=True).start()
            assert first.wait(120)
            for _ in range(signals):
                server.send_signal(signal.SIGTERM)
                time.sleep(0.3)
            sent = time.monotonic()
            code = server.wait(30)
            err = server.communicate()[1]
        assert code == expected, err
        assert time.monotonic() - sent < 10  # the 2000-token answer was not waited for
        if signals == 2:
            assert "second SIGTERM: exiting now, 1 requests in flight are lost" in err
        else:
            assert "1 requests were still running after the 1 s drain timeout" in err


@pytest.mark.slow
def test_overload_every_request_ends_200_or_429_at_once_and_admitted_ones_complete(tokenizer):
    """The probe that found the unbounded wait: 40 clients, 1,200-token prompts, a 150 MiB pool, max-queue 4."""
    app = build_app(ServeConfig(model=MODEL, max_batch=16, kv_pool_mb=150, max_queue=4))
    prompts = [haystack(tokenizer, 1200, offset=97 * i) for i in range(40)]

    async def one(client, prompt):
        sent = time.monotonic()
        try:
            reply = await client.completions.with_raw_response.create(model=MODEL, prompt=prompt, max_tokens=6,
                                                                      temperature=0)
        except openai.APIStatusError as error:
            return error.status_code, error.response.headers.get("retry-after"), time.monotonic() - sent, None
        return 200, None, time.monotonic() - sent, reply.parse()

    async def storm(url):
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=300) as client:
            return await asyncio.gather(*(one(client, p) for p in prompts))

    with ServerThread(app) as server:
        started = time.monotonic()
        results = asyncio.run(storm(server.url))
        elapsed = time.monotonic() - started
        health = httpx.get(server.url + "/health").json()
    app.state.engine.stop()
    answered = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 429]
    assert len(answered) + len(refused) == 40, [r[0] for r in results]  # no 5xx, no other status, no hang
    assert 1 <= len(answered) < 40 and refused
    assert all(int(retry) >= 1 and waited < 10 for _, retry, waited, _ in refused)  # refused at once, not queued
    for *_, reply in answered:  # every admitted request has its whole answer
        choice = reply.choices[0]
        assert choice.finish_reason in ("length", "stop") and reply.usage.completion_tokens >= 1
        assert choice.finish_reason == "stop" or reply.usage.completion_tokens == 6
    assert health["running"] == 0 and health["queued"] == 0 and health["kv_bytes_in_use"] == 0
    assert elapsed < 300


def kv_in_use(url: str) -> float:
    metrics = httpx.get(url + "/metrics", timeout=30).text
    return float(re.search(r"^tokensieve_kv_bytes_in_use (\S+)$", metrics, re.M).group(1))


@pytest.mark.slow  # a load run
def test_a_storm_of_hang_ups_frees_every_byte_and_leaves_the_others_untouched(tokenizer):
    app = build_app(ServeConfig(model=MODEL, max_batch=16, kv_pool_mb=300))
    steady = {"model": MODEL, "prompt": haystack(tokenizer, 250, offset=5000), "max_tokens": 32, "temperature": 0}
    with ServerThread(app) as server:
        alone = httpx.post(server.url + "/v1/completions", json=steady, timeout=300).json()["choices"][0]["text"]
        peak, stop = [0.0], threading.Event()

        def watch():
            while not stop.is_set():
                peak[0] = max(peak[0], kv_in_use(server.url))
                time.sleep(0.1)

        def hang_up(i):
            body = {"model": MODEL, "prompt": haystack(tokenizer, 200, offset=300 * i), "max_tokens": 500,
                    "temperature": 0, "stream": True}
            with httpx.stream("POST", server.url + "/v1/completions", json=body, timeout=300) as reply:
                for line in reply.iter_lines():
                    if line.startswith("data: "):
                        return  # leaving the block closes the connection after the first chunk

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        quitters = [threading.Thread(target=hang_up, args=(i,)) for i in range(12)]
        for thread in quitters:
            thread.start()
        during = httpx.post(server.url + "/v1/completions", json=steady, timeout=300).json()["choices"][0]["text"]
        for thread in quitters:
            thread.join(300)
        deadline = time.monotonic() + 60
        while (kv_in_use(server.url) or httpx.get(server.url + "/health").json()["running"]) and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        watcher.join()
        assert kv_in_use(server.url) == 0 and httpx.get(server.url + "/health").json()["running"] == 0
        assert peak[0] > 0  # the metrics saw the quitters' bytes, then saw them return
    app.state.engine.stop()
    assert during == alone  # the request that stayed got exactly its answer



@pytest.mark.slow
def test_a_one_minute_soak_loses_nothing_and_ends_with_an_empty_pool(tmp_path):
    """CI's short version of `tokensieve bench soak` (docs/SERVING.md has the 20-minute run)."""
    from typer.testing import CliRunner

    from tokensieve.cli import app

    done = CliRunner().invoke(app, ["bench", "soak", "--minutes", "1", "--out", str(tmp_path / "soak.json")])
    assert done.exit_code == 0, done.output
    result = json.loads((tmp_path / "soak.json").read_text())
    outcomes = result["outcomes"]
    assert outcomes.get("lost", 0) == 0 and outcomes["answered"] >= 10 and outcomes.get("hung_up", 0) >= 1
    assert result["drained_kv_bytes"] == 0 and result["exit_code"] == 0
    assert result["memory"]["samples_after_warmup"] >= 6
