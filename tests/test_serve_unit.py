"""The serving engine on a tiny random Llama: packed steps give each sequence exactly what one-sequence greedy
decoding under its policy gives; the pool admits by kept bytes; cancelled sequences free their memory."""

from __future__ import annotations

import pytest
import torch

from tokensieve.core.budget import parse_budget
from tokensieve.core.cache import SieveCache
from tokensieve.core.hooks import apply
from tokensieve.methods import make
from tokensieve.serve.engine import Engine, Request, RequestError
from tokensieve.serve.pool import Footprint, measured_bytes
from tokensieve.serve.sampling import Sampling, cut_at_stop, next_token, safe_prefix

POLICIES = [("full", 1.0), ("snapkv", 0.25), ("pyramid", 0.25), ("tova", 0.25), ("knorm", 0.5), ("h2o", 0.5),
            ("streaming_llm", 0.25), ("tokenselect", 0.25), ("hisa", 0.25), ("fasa", 0.5)]


@pytest.fixture(scope="module")
def net(tiny_llama):
    tiny_llama.generation_config.eos_token_id = None  # random weights: never stop early
    return tiny_llama


def greedy(net, ids: list[int], policy: str, budget: float, new: int) -> list[int]:
    """One sequence, one prompt forward, then one token per step: what `generate` does."""
    cache, out = SieveCache(net.config), []
    with torch.inference_mode(), apply(net, make(policy, budget=parse_budget(budget)), len(ids)) as session:
        session.decode_room = new
        logits = net(input_ids=torch.tensor([ids]), position_ids=torch.arange(len(ids))[None],
                     past_key_values=cache, use_cache=True, logits_to_keep=1).logits[0, -1]
        for step in range(new):
            out.append(int(logits.argmax()))
            if step < new - 1:
                logits = net(input_ids=torch.tensor([[out[-1]]]), position_ids=torch.tensor([[len(ids) + step]]),
                             past_key_values=cache, use_cache=True, logits_to_keep=1).logits[0, -1]
    return out


def prompts(count: int, seed: int = 1) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    lengths = [300, 40, 170, 90, 230, 65, 120, 260, 33, 150]
    return [torch.randint(0, 128, (lengths[i % 10],), generator=generator).tolist() for i in range(count)]


def run(engine: Engine, requests: list[Request]) -> list[list]:
    events = [[] for _ in requests]
    for request, sink in zip(requests, events, strict=True):
        engine.submit(request, sink.append)
    engine.run_until_idle()
    return events


def test_packed_batch_equals_one_sequence_greedy_for_every_policy(net):
    rows = prompts(len(POLICIES))
    engine = Engine(net, prefill_chunk=64)
    requests = [Request(ids, 10, policy, budget) for ids, (policy, budget) in zip(rows, POLICIES, strict=True)]
    events = run(engine, requests)
    for request, got in zip(requests, events, strict=True):
        tokens = [t for event in got for t in event.token_ids]
        assert tokens == greedy(net, request.prompt_ids, request.policy, request.budget, 10), request.policy
        assert got[-1].finish_reason == "length"
    # prompts were fed in several pieces and interleaved with decodes: far fewer steps than one per piece
    assert engine.steps < sum(len(r) // 64 + 10 for r in rows)
    assert engine.pool.in_use == 0 and not engine.running


def test_requests_joining_mid_run_decode_exactly(net):
    """A request submitted while others decode joins at a step boundary and changes nobody's tokens."""
    rows = prompts(4, seed=3)
    engine = Engine(net, prefill_chunk=32)
    first = [[] for _ in range(2)]
    for ids, sink in zip(rows[:2], first, strict=True):
        engine.submit(Request(ids, 12, "snapkv", 0.25), sink.append)
    for _ in range(8):
        engine.step()
    late = [[] for _ in range(2)]
    for ids, sink in zip(rows[2:], late, strict=True):
        engine.submit(Request(ids, 12, "tokenselect", 0.25), sink.append)
    engine.run_until_idle()
    for ids, got in zip(rows[:2], first, strict=True):
        assert [t for e in got for t in e.token_ids] == greedy(net, ids, "snapkv", 0.25, 12)
    for ids, got in zip(rows[2:], late, strict=True):
        assert [t for e in got for t in e.token_ids] == greedy(net, ids, "tokenselect", 0.25, 12)


def test_pool_admits_by_kept_bytes_and_reservations_bound_real_bytes(net):
    footprint = Footprint.of(net)
    n, m = 256, 16
    full = footprint.decode_bytes(n, m, make("full"))
    snap = make("snapkv", budget=parse_budget(0.125))
    kept = footprint.decode_bytes(n, m, snap)
    assert kept < full / 4
    pool = full * 2  # room for two full-cache sequences
    engine = Engine(net, kv_pool_bytes=pool, max_batch=64, prefill_chunk=512)
    rows = prompts(20, seed=5)
    rows = [(r * 3)[:n] for r in rows]
    for policy, budget, limit in (("full", 1.0, 2), ("snapkv", 0.125, None)):
        most, measured_ok = 0, True
        for ids in rows:
            engine.submit(Request(ids, m, policy, budget), lambda e: None)
        while engine.waiting or engine.running:
            engine.step()
            most = max(most, sum(s.decoding for s in engine.running))
            assert engine.pool.in_use <= pool
            for seq in engine.running:
                if seq.decoding:
                    measured_ok &= measured_bytes(seq.cache, seq.session) <= engine.pool.reserved[seq.id]
        assert measured_ok
        if limit:
            assert most == limit
        else:
            # 12.5 % of the prompt: one-piece prefills peak at the kept cache + 2 of the 3 layers' prompt rows
            whole = footprint.prefill_bytes(n, m, snap, whole=True)
            assert most >= (pool - whole) // kept + 1 and most > 3 * 2, most


def test_bad_requests_are_refused_with_a_status(net):
    engine = Engine(net, kv_pool_bytes=10_000, max_queue=0)
    cases = [(Request([], 4), 400, "empty"), (Request([1, 2], 0), 400, "max_tokens"),
             (Request([1] * 500, 100), 400, "context length"), (Request([1, 2], 4, "nope"), 400, "unknown policy"),
             (Request([1, 2], 4, "snapkv", 2.5), 400, "budget"), (Request([1] * 400, 4), 400, "KV pool")]
    for request, status, words in cases:
        with pytest.raises(RequestError, match=words) as caught:
            engine.submit(request, lambda e: None)
        assert caught.value.status == status
    small = Engine(net, max_batch=1, max_queue=1)
    small.submit(Request([1, 2, 3], 4), lambda e: None)
    small.admit()  # the first runs, the second waits, the third is turned away
    small.submit(Request([1, 2, 3], 4), lambda e: None)
    with pytest.raises(RequestError) as caught:
        small.submit(Request([1, 2, 3], 4), lambda e: None)
    assert caught.value.status == 429 and caught.value.retry_after


def test_max_queue_bounds_the_wait_even_when_each_request_alone_would_fit(net):
    """40 requests at once into a pool that fits each of them alone: --max-queue of them wait, the rest are turned
    away at once with a 429 (the queue used to grow to 40, since each one "fit" on its own)."""
    engine = Engine(net, kv_pool_bytes=2**20, max_batch=16, max_queue=4)
    accepted, refused = [], []
    for i in range(40):
        try:
            accepted.append(engine.submit(Request([1 + i % 50] * 100, 8), lambda e: None))
        except RequestError as error:
            refused.append(error)
    assert len(accepted) == 4 and len(refused) == 36 and len(engine.waiting) == 4
    assert all(e.status == 429 and e.retry_after for e in refused)
    engine.run_until_idle()  # every admitted request completes with its full answer
    assert all(len(seq.generated) == 8 for seq in accepted)


def test_cancel_frees_memory_at_the_next_step(net):
    engine = Engine(net)
    got = []
    seq = engine.submit(Request(prompts(1)[0], 50), got.append)
    engine.step()
    engine.step()
    assert engine.pool.in_use > 0 and seq.cache is not None
    engine.cancel(seq)
    engine.step()
    assert engine.pool.in_use == 0 and not engine.running and seq.cache is None
    assert got[-1].finish_reason == "cancelled"


def test_sampling_and_stop_strings():
    logits = torch.tensor([0.1, 3.0, 0.2])
    assert next_token(logits, Sampling(), None) == 1
    generator = torch.Generator().manual_seed(0)
    picks = {next_token(logits, Sampling(temperature=1.0, top_p=0.5), generator) for _ in range(20)}
    assert picks == {1}  # top-p 0.5 keeps only the dominant token
    assert cut_at_stop("one two three", ["two", "three"]) == ("one ", True)
    assert cut_at_stop("one", ["x"]) == ("one", False)
    assert safe_prefix("hello wor", ["world"]) == "hello "
    assert safe_prefix("abc\ufffd", []) == "abc"


def test_what_the_schema_fuzz_found_stays_fixed():
    """Each was a 500 (or a refusal of every plain string prompt) before tests/test_serve_fuzz.py found it."""
    from tokensieve.serve.errors import error_response
    from tokensieve.serve.protocol import CompletionRequest

    logits = torch.tensor([0.1, 3.0, 0.2])
    generator = torch.Generator().manual_seed(0)
    assert next_token(logits, Sampling(temperature=5e-324), generator) == 1  # greedy, not 0/0
    assert next_token(logits, Sampling(temperature=1.0, top_p=5e-324), generator) == 1  # the top token stays
    assert Sampling(temperature=5e-324).generator("cpu") is None
    assert CompletionRequest(model="m", prompt="x").prompts == ["x"]
    for bad in ({"prompt": ""}, {"prompt": ["a", ""]}, {"prompt": "x", "seed": 2**64}):
        with pytest.raises(ValueError):
            CompletionRequest(model="m", **bad)
    assert b"\\n" in error_response(404, "the model 'a\nb'").body  # one line, whatever the client sent


def test_api_keys_come_from_the_flag_else_the_environment_and_the_warning_is_for_open_exposed_hosts():
    from tokensieve.serve.auth import ENV, exposed_warning, keys_from, matches

    assert keys_from(["a", " b "], {ENV: "x"}) == ("a", "b")
    assert keys_from(None, {ENV: "k1, k2,,"}) == ("k1", "k2") and keys_from(None, {}) == ()
    assert matches("k2", ("k1", "k2")) and not matches("k3", ("k1", "k2")) and not matches("", ("k1",))
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert exposed_warning(host, ()) is None, host
    assert exposed_warning("0.0.0.0", ("k",)) is None
    for host in ("0.0.0.0", "192.168.1.5", "example.org"):
        line = exposed_warning(host, ())
        assert line.startswith("warning:") and host in line and "\n" not in line


def test_the_key_middleware_guards_v1_and_optionally_metrics_but_never_health():
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from tokensieve.serve.auth import ApiKeys

    def app_with(keyed_metrics: bool) -> TestClient:
        app = FastAPI()
        for path in ("/health", "/metrics", "/v1/models"):
            app.add_api_route(path, lambda: {"ok": True})
        app.add_middleware(ApiKeys, keys=("secret-1", "secret-2"), metrics_keyed=keyed_metrics)
        return TestClient(app)

    client = app_with(False)
    assert client.get("/health").status_code == client.get("/metrics").status_code == 200
    missing, wrong = client.get("/v1/models"), client.get("/v1/models", headers={"Authorization": "Bearer nope"})
    for response in (missing, wrong, client.get("/v1/models", headers={"Authorization": "Basic secret-1"})):
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        error = response.json()["error"]
        assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
        assert "secret" not in response.text and "nope" not in response.text  # no key is ever echoed
    assert "missing" in missing.json()["error"]["message"] and "incorrect" in wrong.json()["error"]["message"]
    for key in ("secret-1", "secret-2"):
        assert client.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    keyed = app_with(True)
    assert keyed.get("/metrics").status_code == 401 and keyed.get("/health").status_code == 200
    assert keyed.get("/metrics", headers={"Authorization": "Bearer secret-2"}).status_code == 200


def test_the_soak_report_reads_level_and_trend_from_the_samples():
    from tokensieve.bench.soak import Sample, SoakResult

    def run(rss_at):
        samples = [Sample(t, rss_at(t), 0, 0, 0) for t in range(0, 600, 5)]
        return SoakResult(config={}, outcomes={}, samples=samples).memory(warmup_s=60)

    flat = run(lambda t: 1000 * 2**20 + (t % 10) * 2**20)  # a saw tooth around a flat level
    assert abs(flat["rss_end_vs_warmup"]) < 0.01
    assert abs(flat["rss_slope_mib_per_min"]) <= flat["rss_slope_ci95"] + 0.1
    leak = run(lambda t: 1000 * 2**20 + t * 2**20 // 6)  # 10 MiB a minute
    assert leak["rss_slope_mib_per_min"] == pytest.approx(10, rel=0.01) and leak["rss_end_vs_warmup"] > 0.05
    assert SoakResult(config={}, outcomes={}).memory(warmup_s=60) == {}  # too few samples: no verdict


def test_the_pool_admits_more_int4_requests_than_fp_ones_as_their_bytes_predict(net):
    footprint = Footprint.of(net)
    n, m = 256, 16
    full, coded = footprint.decode_bytes(n, m, make("full")), footprint.decode_bytes(n, m, make("full"), "int4")
    assert coded < full / 1.9  # a tiny model: head_dim 16, 272 rows, the fp sinks and window weigh
    pool = full * 3  # room for three full-precision sequences
    peak = footprint.prefill_bytes(n, m, make("full"))  # every prompt goes in at full precision
    engine = Engine(net, kv_pool_bytes=pool, max_batch=64, prefill_chunk=512)
    rows = [(r * 20)[:n] for r in prompts(20, seed=6)]
    assert {len(r) for r in rows} == {n}
    most = {}
    for kv_dtype in ("fp", "int4"):
        most[kv_dtype], measured_ok = 0, True
        for ids in rows:
            engine.submit(Request(ids, m, "full", 1.0, kv_dtype=kv_dtype), lambda e: None)
        while engine.waiting or engine.running:
            engine.step()
            decoding = [s for s in engine.running if s.decoding]
            most[kv_dtype] = max(most[kv_dtype], len(decoding))
            assert engine.pool.in_use <= pool
            for seq in decoding:
                measured_ok &= measured_bytes(seq.cache, seq.session) <= engine.pool.reserved[seq.id]
        assert measured_ok, kv_dtype
    assert most["fp"] == 3
    assert most["int4"] == (pool - peak) // coded + 1 == 4, most  # one prompt at full precision, the rest coded
    with pytest.raises(RequestError, match="unknown kv dtype 'int3'"):
        engine.submit(Request(rows[0], m, "full", 1.0, kv_dtype="int3"), lambda e: None)
