"""The server on SmolLM2-135M over loopback, driven by the official `openai` client (sync, async, streaming)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time

import openai
import pytest

try:
    import httpx2 as httpx  # the HTTP client openai >= 3 ships with
except ImportError:
    import httpx

from tokensieve.data.corpus import haystack
from tokensieve.models import cached_load
from tokensieve.run import generate
from tokensieve.serve.server import ServeConfig, ServerThread, build_app

pytestmark = pytest.mark.real
MODEL = "smollm2-135m"
POOL_MB = 400


@pytest.fixture(scope="module")
def tokenizer():
    return cached_load(MODEL)[1]


@pytest.fixture(scope="module")
def server():
    app = build_app(ServeConfig(model=MODEL, max_batch=16, kv_pool_mb=POOL_MB, prefill_chunk=128))
    with ServerThread(app) as running:
        running.app = app
        yield running
    app.state.engine.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=300)


def text_of(tokenizer, tokens: int, offset: int = 0) -> str:
    return haystack(tokenizer, tokens, offset=offset)


def sieve(policy: str, budget: float) -> dict:
    return {"tokensieve": {"policy": policy, "budget": budget}}


def test_a_request_stores_its_kv_as_int4_and_answers_as_generate_does(client, tokenizer):
    prompt = text_of(tokenizer, 600) + "\n\nIn one sentence, the essay says that"
    body = {"tokensieve": {"policy": "tokenselect", "budget": 0.25, "kv_dtype": "int4"}}
    reply = client.completions.create(model=MODEL, prompt=prompt, max_tokens=12, temperature=0, extra_body=body)
    reference = generate(MODEL, context=prompt, question="", policy="tokenselect", budget=0.25, plain=True,
                         max_new_tokens=12, kv_dtype="int4")
    assert reply.choices[0].text == reference.answer
    extra = reply.usage.model_extra["tokensieve"]
    assert extra["kv_dtype"] == "int4" and extra["kv_bytes_kept"] < 0.3 * extra["kv_bytes_full"]
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=MODEL, prompt=prompt, max_tokens=4,
                                  extra_body={"tokensieve": {"kv_dtype": "int3"}})


def test_models_health_and_greedy_equals_generate(client, server, tokenizer):
    assert [m.id for m in client.models.list().data] == [MODEL]
    prompt = text_of(tokenizer, 400) + "\n\nIn one sentence, the essay says that"
    for policy, budget in (("snapkv", 0.25), ("tokenselect", 0.25), ("full", 1.0)):
        reply = client.completions.create(model=MODEL, prompt=prompt, max_tokens=16, temperature=0,
                                          extra_body=sieve(policy, budget))
        reference = generate(MODEL, context=prompt, question="", policy=policy, budget=budget, plain=True,
                             max_new_tokens=16)
        assert reply.choices[0].text == reference.answer, policy
        assert reply.usage.completion_tokens == len([t for t in reference.token_ids if t != tokenizer.eos_token_id])
        extra = reply.usage.model_extra["tokensieve"]
        assert extra["policy"] == policy and extra["budget"] == budget
        if policy == "snapkv":  # the kept cache is really smaller than the full one
            assert extra["kv_bytes_kept"] < 0.5 * extra["kv_bytes_full"]
    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "ok" and health["kv_pool_bytes"] == POOL_MB * 2**20


def test_chat_and_streaming_match_their_plain_answers(client):
    messages = [{"role": "user", "content": "Name three colours."}]
    plain = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=20, temperature=0)
    assert plain.choices[0].message.role == "assistant" and plain.choices[0].message.content
    chunks = list(client.chat.completions.create(model=MODEL, messages=messages, max_tokens=20, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == plain.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens
    text = client.completions.create(model=MODEL, prompt="One, two, three, four,", max_tokens=12, temperature=0)
    pieces = list(client.completions.create(model=MODEL, prompt="One, two, three, four,", max_tokens=12,
                                            temperature=0, stream=True))
    assert "".join(p.choices[0].text for p in pieces) == text.choices[0].text
    assert pieces[-1].choices[0].finish_reason == text.choices[0].finish_reason
    stopped = client.completions.create(model=MODEL, prompt="One, two, three, four,", max_tokens=12,
                                        temperature=0, stop=[" six"])
    assert " six" not in stopped.choices[0].text and stopped.choices[0].finish_reason == "stop"


BAD = [
    ({"model": "no-such-model", "prompt": "x"}, 404),
    ({"model": MODEL, "prompt": "x", "tokensieve": {"policy": "no-such-policy"}}, 400),
    ({"model": MODEL, "prompt": "x", "tokensieve": {"policy": "snapkv", "budget": 0}}, 400),
    ({"model": MODEL, "prompt": "x", "tokensieve": {"policy": "snapkv", "budget": 1.5}}, 400),
    ({"model": MODEL, "prompt": "x", "max_tokens": 0}, 400),
    ({"model": MODEL, "prompt": "x " * 8300, "max_tokens": 4}, 400),  # longer than the 8k context
    ({"model": MODEL, "prompt": "x", "max_tokens": 10**9}, 400),  # past the context before any compute
    ({"model": MODEL, "prompt": ["x"] * 300, "max_tokens": 2}, 400),  # more prompts than a batch holds
    ({"model": MODEL, "prompt": [], "max_tokens": 2}, 400),
    ({"model": MODEL, "prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, 400),
    ({"model": MODEL, "prompt": "x", "n": 2}, 400),
]


def test_bad_input_gets_openai_errors_and_the_server_goes_on(server, client):
    for body, status in BAD:
        reply = httpx.post(server.url + "/v1/completions", json=body, timeout=60)
        assert reply.status_code == status, body
        error = reply.json()["error"]
        assert error["message"] and error["type"] and "\n" not in error["message"], body
    malformed = httpx.post(server.url + "/v1/completions", content=b'{"model": "x", "prompt": ',
                           headers={"content-type": "application/json"})
    assert malformed.status_code == 400 and "JSON" in malformed.json()["error"]["message"]
    oversize = httpx.post(server.url + "/v1/completions", content=b"x" * (2 << 20),
                          headers={"content-type": "application/json"})
    assert oversize.status_code == 413
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=MODEL, prompt="x", max_tokens=0)
    assert client.completions.create(model=MODEL, prompt="Hello", max_tokens=2, temperature=0).choices[0].text


@pytest.mark.slow
def test_load_32_clients_mixed_policies_and_malformed(server, tokenizer):
    """32 concurrent clients (10 % malformed): every good one answered, every bad one a 4xx, pool respected."""
    mix = [("full", 1.0), ("snapkv", 0.125), ("tokenselect", 0.125), ("streaming_llm", 0.25), ("knorm", 0.5),
           ("tova", 0.25), ("hisa", 0.25)]
    prompts = [text_of(tokenizer, 120 + 30 * (i % 12), offset=i * 97) for i in range(32)]
    bad_rows = {3, 14, 25}
    peak_in_use, stop = [0], threading.Event()

    def watch():
        while not stop.is_set():
            health = httpx.get(server.url + "/health", timeout=30).json()
            peak_in_use[0] = max(peak_in_use[0], health["kv_bytes_in_use"])
            time.sleep(0.2)

    async def one(client, i):
        if i in bad_rows:
            body = {"tokensieve": {"policy": "nope"}} if i == 3 else {"max_tokens": -1} if i == 14 else {}
            model = MODEL if i != 25 else "gpt-unknown"
            try:
                await client.completions.create(model=model, prompt=prompts[i], extra_body=body or None,
                                                max_tokens=body.get("max_tokens", 4))
            except openai.APIStatusError as error:
                return error.status_code
            return 200
        policy, budget = mix[i % len(mix)]
        reply = await client.completions.create(model=MODEL, prompt=prompts[i], max_tokens=8, temperature=0,
                                                extra_body=sieve(policy, budget))
        assert reply.usage.completion_tokens >= 1
        return 200

    async def main():
        async with openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0,
                                      timeout=600) as client:
            return await asyncio.gather(*(one(client, i) for i in range(32)))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.monotonic()
    statuses = asyncio.run(asyncio.wait_for(main(), 600))
    stop.set()
    watcher.join()
    assert [s for i, s in enumerate(statuses) if i not in bad_rows] == [200] * 29
    assert all(400 <= statuses[i] < 500 for i in bad_rows), statuses
    assert 0 < peak_in_use[0] <= POOL_MB * 2**20
    assert time.monotonic() - started < 600
    health = httpx.get(server.url + "/health").json()
    assert health["running"] == 0 and health["kv_bytes_in_use"] == 0
    metrics = httpx.get(server.url + "/metrics").text
    assert 'tokensieve_requests_total{policy="snapkv",status="200"}' in metrics
    assert "tokensieve_time_to_first_token_seconds_bucket" in metrics


def test_full_queue_answers_429_with_retry_after(tokenizer):
    app = build_app(ServeConfig(model=MODEL, max_batch=1, max_queue=0))
    with ServerThread(app) as small:
        first = threading.Thread(target=lambda: httpx.post(
            small.url + "/v1/completions", json={"model": MODEL, "prompt": text_of(tokenizer, 400),
                                                 "max_tokens": 40}, timeout=300))
        first.start()
        time.sleep(1.0)
        busy = httpx.post(small.url + "/v1/completions", json={"model": MODEL, "prompt": "Hi", "max_tokens": 2})
        first.join()
        assert busy.status_code == 429 and int(busy.headers["retry-after"]) >= 1
        assert busy.json()["error"]["type"] == "rate_limit_exceeded"
    app.state.engine.stop()


def test_cli_refuses_bad_options_with_one_line():
    from typer.testing import CliRunner

    from tokensieve.cli import app

    for args in (["--budget", "2"], ["--policy", "nope"]):
        done = CliRunner().invoke(app, ["serve", *args])
        assert done.exit_code == 2 and done.stderr.strip().count("\n") == 0 and not done.stdout, done.output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_ray_serve_replicas_share_the_load():
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
    process = subprocess.Popen([sys.executable, "-m", "tokensieve.cli", "serve", "--replicas", "2", "--port",
                                str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline, replicas = time.monotonic() + 420, set()
        while time.monotonic() < deadline and len(replicas) < 2:
            try:
                health = httpx.get(url + "/health", timeout=10)
                if health.status_code == 200:
                    replicas.add(health.json()["replica"])
            except httpx.HTTPError:
                time.sleep(2)
        assert len(replicas) == 2, "two replicas did not come up"
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)
        reply = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=6,
                                          temperature=0, extra_body=sieve("snapkv", 0.5))
        assert reply.choices[0].text.strip()
        streamed = "".join(c.choices[0].text for c in client.completions.create(
            model=MODEL, prompt="The capital of France is", max_tokens=6, temperature=0, stream=True,
            extra_body=sieve("snapkv", 0.5)))
        assert streamed == reply.choices[0].text
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def test_gemma3_sliding_layers_in_packed_steps_equal_generate():
    """Gemma 3's sliding-window layers (512 tokens) run inside packed steps with a window mask; a 700-token prompt
    crosses the window. Two sequences decode together and each equals `generate`."""
    from tokensieve.serve.engine import Engine, Request

    net, tok = cached_load("gemma3-270m")
    text = haystack(tok, 700) + "\n\nThe essay says that"
    engine, outs = Engine(net, tok), {}
    for policy, budget in (("full", 1.0), ("snapkv", 0.25)):
        outs[policy] = []
        engine.submit(Request(tok(text).input_ids, 12, policy, budget), outs[policy].append)
    engine.run_until_idle()
    for policy, budget in (("full", 1.0), ("snapkv", 0.25)):
        reference = generate("gemma3-270m", context=text, question="", policy=policy, budget=budget, plain=True,
                             max_new_tokens=12)
        assert "".join(event.text for event in outs[policy]) == reference.answer, policy


def test_api_keys_with_the_official_client(tokenizer):
    """A keyed server: the official client with a wrong key gets AuthenticationError (401), with the right one its
    answer; /health stays open, /metrics open unless keyed. The key never appears in the config's repr."""
    config = ServeConfig(model=MODEL, max_batch=2, api_keys=("k-123", "k-456"), metrics_keyed=True)
    assert "k-123" not in repr(config)
    app = build_app(config)
    with ServerThread(app) as keyed:
        wrong = openai.OpenAI(base_url=keyed.url + "/v1", api_key="k-999", max_retries=0, timeout=120)
        with pytest.raises(openai.AuthenticationError) as refused:
            wrong.completions.create(model=MODEL, prompt="Hello", max_tokens=2)
        assert refused.value.status_code == 401 and refused.value.code == "invalid_api_key"
        right = openai.OpenAI(base_url=keyed.url + "/v1", api_key="k-456", max_retries=0, timeout=120)
        assert right.completions.create(model=MODEL, prompt="Hello", max_tokens=2, temperature=0).choices[0].text
        assert [m.id for m in right.models.list().data] == [MODEL]
        assert httpx.get(keyed.url + "/health").status_code == 200
        assert httpx.get(keyed.url + "/metrics").status_code == 401
        assert httpx.get(keyed.url + "/metrics", headers={"Authorization": "Bearer k-123"}).status_code == 200
    app.state.engine.stop()


def test_cli_refuses_key_metrics_without_a_key():
    from typer.testing import CliRunner

    from tokensieve.cli import app

    done = CliRunner().invoke(app, ["serve", "--key-metrics"], env={"TOKENSIEVE_API_KEY": ""})
    assert done.exit_code == 2 and "needs an API key" in done.stderr and done.stderr.count("\n") == 1
