"""Every KV policy on hand-built tensors whose right answer is known: which tokens `select()` keeps.

Keys are mostly the identity (key j = e_j), so a query row *is* its attention logits and the attention it pays is
softmax(row) over the keys it may see (causal by absolute position). Each case is built so that a wrong scorer (a
flipped sign, the wrong queries, no pooling, heads mixed up) keeps a different token. No model, pure tensors.
"""

from __future__ import annotations

import json

import pytest
import torch

from tokensieve import REGISTRY, KVPolicy, TokensieveError, make
from tokensieve.core.budget import Budget
from tokensieve.core.cache import SieveLayer
from tokensieve.core.view import LayerView

HIGH = 10.0  # a logit that takes ~all of a query's attention against logits of 0


def view_of(queries: torch.Tensor, keys: torch.Tensor, *, positions: torch.Tensor | None = None,
            seen: int | None = None, state: dict | None = None, layer_idx: int = 0, scaling: float = 1.0) -> LayerView:
    """queries [q_heads, q, d], keys [kv_heads, n, d] (batch 1); the queries sit at positions seen-q .. seen-1."""
    queries, keys = queries[None].float(), keys[None].float()
    _, heads, n, _ = keys.shape
    if positions is None:
        positions = torch.arange(n).expand(1, heads, n)
    elif positions.dim() == 1:
        positions = positions.expand(1, heads, n)
    return LayerView(layer_idx=layer_idx, layer_rank=0, n_layers=1, queries=queries, keys=keys,
                     values=keys.clone(), positions=positions.contiguous(),
                     seen=int(positions.max()) + 1 if seen is None else seen, scaling=scaling,
                     state={} if state is None else state)


def logit_rows(n: int, q: int, focus: dict[int, int | dict[int, float]], heads: int = 1) -> torch.Tensor:
    """Queries [heads, q, n] for identity keys: query i (position n-q+i) puts HIGH on token focus[i]; a dict
    {token: probability} instead gives that query this attention distribution (if the tokens are visible)."""
    rows = torch.zeros(heads, q, n)
    for i, target in focus.items():
        if isinstance(target, dict):
            probs = torch.full((n,), 1e-6)
            for token, p in target.items():
                probs[token] = p
            rows[:, i] = probs.log()
        else:
            rows[:, i, target] = HIGH
    return rows


def identity_keys(n: int, heads: int = 1) -> torch.Tensor:
    return torch.eye(n).expand(heads, n, n).clone()


def kept(policy: KVPolicy, view: LayerView, capacity: int) -> list[list[int]]:
    """Positions kept per KV head (batch 0), after checking the indices are `capacity` unique sorted ones. The
    policy observes the view's queries first, as the session does at every compression point."""
    policy.accumulate(view)
    idx = policy.select(view, capacity)
    assert idx.shape == (*view.positions.shape[:2], capacity)
    out = []
    for h in range(idx.shape[1]):
        row = idx[0, h]
        assert torch.equal(row, row.unique(sorted=True)), "indices must be unique and sorted"
        out.append(view.positions[0, h, row].tolist())
    return out


# --- attention scorers: H2O (all queries), TOVA (the newest), SnapKV (the last `observe`, pooled) --------------

def two_focus_view(group: int = 1) -> LayerView:
    """10 tokens, 2 KV heads. Head 0: queries 0-8 look at token 3, the newest (9) at token 5. Head 1: queries 0-8
    look at token 5 (only 5-8 can see it), the newest at token 2. Protected with sinks=1, window=2: 0, 8, 9."""
    n = 10
    head0 = logit_rows(n, n, {**{i: 3 for i in range(9)}, 9: 5}, heads=group)
    head1 = logit_rows(n, n, {**{i: 5 for i in range(9)}, 9: 2}, heads=group)
    return view_of(torch.cat([head0, head1]), identity_keys(n, heads=2))


def test_h2o_keeps_the_token_with_the_most_accumulated_attention():
    # Head 0: token 3 gets ~6 (queries 3-8) against ~1 for token 5 (the newest query only).
    # Head 1: token 5 gets ~4 (queries 5-8); token 2 ~1.78 (the newest + spread of early queries); token 1 ~1.28.
    h2o = make("h2o", Budget(4, sinks=1, window=2))
    assert kept(h2o, two_focus_view(), 4) == [[0, 3, 8, 9], [0, 5, 8, 9]]
    assert kept(make("h2o", Budget(5, sinks=1, window=2)), two_focus_view(), 5) == [[0, 3, 5, 8, 9], [0, 2, 5, 8, 9]]


def test_h2o_accumulates_across_calls_in_the_view_state():
    h2o = make("h2o", Budget(4, sinks=1, window=2))
    view = two_focus_view()
    h2o.accumulate(view)
    first = h2o.score(view).clone()
    torch.testing.assert_close(first, view.attention_mass().sum(2))
    h2o.accumulate(view)
    torch.testing.assert_close(h2o.score(view), 2 * first)  # the running sum lives in view.state["h2o"]
    assert view.state["h2o"].shape == (1, 2, 10)


def test_tova_keeps_what_the_newest_query_attends_to():
    tova = make("tova", Budget(4, sinks=1, window=2))
    assert kept(tova, two_focus_view(), 4) == [[0, 5, 8, 9], [0, 2, 8, 9]]


def test_layer_wise_tova_keeps_what_the_newest_queries_attend_to_on_average_over_all_heads():
    """Head 0's newest query puts 0.7/0.3 on tokens 3/5, head 1's 0.6/0.4 on 5/2: per head TOVA keeps 3 and 5;
    averaged over heads 5 wins (0.45 against 0.35), and both heads keep it (the maximum would pick 3)."""
    queries = torch.cat([logit_rows(10, 1, {0: {3: 0.7, 5: 0.3}}), logit_rows(10, 1, {0: {5: 0.6, 2: 0.4}})])
    view = view_of(queries, identity_keys(10, heads=2))
    assert kept(make("tova", Budget(4, sinks=1, window=2)), view, 4) == [[0, 3, 8, 9], [0, 5, 8, 9]]
    assert kept(make("tova_layer", Budget(4, sinks=1, window=2)), view, 4) == [[0, 5, 8, 9], [0, 5, 8, 9]]


def test_query_groups_vote_together():
    """One KV head, two query heads: their newest queries put 0.55/0.45 on tokens 3/4 and 0.45/0.55 on 4/5.
    Neither head's own favourite is 4, but the group's total is; every attention scorer must keep 4."""
    n = 10
    queries = torch.cat([logit_rows(n, 1, {0: {3: 0.55, 4: 0.45}}), logit_rows(n, 1, {0: {4: 0.45, 5: 0.55}})])
    view = view_of(queries, identity_keys(n))
    for name in ("h2o", "tova", "snapkv"):
        options = {"kernel": 1} if name == "snapkv" else {}
        assert kept(make(name, Budget(4, sinks=1, window=2), **options), view, 4) == [[0, 4, 8, 9]], name


def snap_view() -> LayerView:
    """16 tokens: queries 2-13 look at token 2, the last two (14, 15) at token 7. Protected: 0, 14, 15."""
    n = 16
    return view_of(logit_rows(n, n, {**{i: 2 for i in range(2, 14)}, 14: 7, 15: 7}), identity_keys(n))


@pytest.mark.parametrize(("kernel", "capacity", "expected"), [
    (1, 4, [0, 7, 14, 15]),                        # no pooling: only the observed token
    (3, 6, [0, 6, 7, 8, 14, 15]),                  # one neighbour each side
    (7, 10, [0, 4, 5, 6, 7, 8, 9, 10, 14, 15]),    # three each side
])
def test_snapkv_keeps_what_the_observation_window_attends_to_and_its_neighbours(kernel, capacity, expected):
    snap = make("snapkv", Budget(capacity, sinks=1, window=2), observe=2, kernel=kernel)
    assert kept(snap, snap_view(), capacity) == [expected]


def test_snapkv_only_listens_to_the_last_observe_queries():
    # 12 queries look at token 2 and 2 at token 7: observing all of them keeps 2, observing the last 2 keeps 7
    assert kept(make("snapkv", Budget(4, sinks=1, window=2), observe=16, kernel=1), snap_view(), 4) == [[0, 2, 14, 15]]
    assert kept(make("snapkv", Budget(4, sinks=1, window=2), observe=2, kernel=1), snap_view(), 4) == [[0, 7, 14, 15]]


def test_snapkv_pooling_keeps_the_length_for_every_odd_kernel():
    view = snap_view()
    for kernel in (1, 3, 5, 7, 9, 31, 33):  # also kernels wider than the 16 stored tokens
        assert make("snapkv", 0.5, observe=2, kernel=kernel).score(view).shape == (1, 1, 16)


@pytest.mark.parametrize("name", ["snapkv", "pyramid"])
@pytest.mark.parametrize("kernel", [6, 2, 0, -1, "7", 2.0])
def test_snapkv_refuses_a_kernel_that_is_not_odd(name, kernel):
    with pytest.raises(TokensieveError, match=f"policy '{name}': option kernel={kernel!r} must be an odd"):
        make(name, Budget(0.5), kernel=kernel)


def test_snapkv_refuses_an_empty_observation_window():
    with pytest.raises(TokensieveError, match="option observe=0 must be a whole number >= 1"):
        make("snapkv", 0.5, observe=0)


# --- scorers that ignore attention --------------------------------------------------------------------------------

def norm_keys(norms: list[float]) -> torch.Tensor:
    """One KV head; key j points along a direction of its own (so attention scorers would differ) with norm j."""
    n = len(norms)
    directions = torch.nn.functional.normalize(torch.randn(n, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    return (directions * torch.tensor(norms)[:, None])[None]


def test_knorm_keeps_the_lowest_norm_keys():
    norms = [9.0, 5.0, 0.5, 3.0, 0.1, 4.0, 2.0, 7.0, 8.0, 6.0]
    view = view_of(torch.randn(1, 3, 8, generator=torch.Generator().manual_seed(1)), norm_keys(norms))
    knorm = make("knorm", Budget(5, sinks=1, window=2))
    assert kept(knorm, view, 5) == [[0, 2, 4, 8, 9]]
    assert kept(knorm, view, 6) == [[0, 2, 4, 6, 8, 9]]


def test_streaming_llm_keeps_sinks_and_the_most_recent():
    keys = identity_keys(12)
    view = view_of(logit_rows(12, 12, {i: 3 for i in range(12)}), keys)  # attention would say token 3
    assert kept(make("streaming_llm", Budget(6, sinks=2, window=2)), view, 6) == [[0, 1, 8, 9, 10, 11]]
    # after an earlier eviction: positions are absolute, not indices
    positions = torch.tensor([0, 1, 3, 4, 6, 7, 9, 11])
    view = view_of(torch.zeros(1, 1, 8), identity_keys(8), positions=positions, seen=12)
    assert kept(make("streaming_llm", Budget(5, sinks=2, window=2)), view, 5) == [[0, 1, 7, 9, 11]]


def test_window_keeps_only_the_most_recent_without_sinks():
    window = make("window", Budget(4, sinks=1, window=2))
    assert window.budget.sinks == 0
    view = view_of(logit_rows(12, 12, {i: 0 for i in range(12)}), identity_keys(12))  # all attention on token 0
    assert kept(window, view, 4) == [[8, 9, 10, 11]]


def test_full_keeps_everything_whatever_the_budget():
    full = make("full", Budget(4, sinks=1, window=2))
    assert full.budget.is_full
    assert full.capacities(12, 3) == [12, 12, 12]
    view = view_of(torch.randn(2, 5, 12), torch.randn(1, 12, 12))
    assert kept(full, view, 12) == [list(range(12))]


def random_view(layer_idx: int = 0) -> LayerView:
    gen = torch.Generator().manual_seed(2)
    return view_of(torch.randn(4, 6, 8, generator=gen), torch.randn(2, 40, 8, generator=gen), layer_idx=layer_idx)


def test_random_is_seeded_and_keeps_exactly_capacity():
    budget = Budget(8, sinks=1, window=2)
    first = kept(make("random", budget, seed=0), random_view(), 8)
    assert kept(make("random", budget, seed=0), random_view(), 8) == first  # a fresh policy, same seed
    assert kept(make("random", budget, seed=1), random_view(), 8) != first
    assert kept(make("random", budget, seed=0), random_view(layer_idx=1), 8) != first  # layers draw their own
    for head in first:
        assert len(set(head)) == 8 and {0, 38, 39} <= set(head)
    assert first[0] != first[1]  # KV heads draw their own


# --- budgets across layers: pyramid (and auto) ----------------------------------------------------------------

def test_pyramid_gives_low_layers_more_with_the_same_total():
    budget = Budget(0.25, sinks=1, window=2)
    caps = make("pyramid", budget).capacities(400, 4)
    assert sum(caps) == sum(make("snapkv", budget).capacities(400, 4)) == 400
    assert caps[0] > caps[-1] and caps == sorted(caps, reverse=True)
    assert min(caps) >= 3
    # and it ranks tokens exactly as SnapKV does
    pyramid = make("pyramid", Budget(6, sinks=1, window=2), observe=2, kernel=3)
    assert kept(pyramid, snap_view(), 6) == [[0, 6, 7, 8, 14, 15]]


def test_auto_protects_the_reported_sinks_and_splits_by_dormancy(tmp_path):
    report = {
        "version": 1, "n_layers": 2, "layers": [], "layer_types": ["full_attention", "full_attention"],
        "sinks": [{"position": 0, "kind": "primary"}, {"position": 2, "kind": "primary"},
                  {"position": 5, "kind": "secondary"}],
        "heads": [{"layer": 0, "sink_fraction": 0.9}, {"layer": 0, "sink_fraction": 0.7},
                  {"layer": 1, "sink_fraction": 0.0}, {"layer": 1, "sink_fraction": 0.2}],
    }
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    auto = make("auto", Budget(6, sinks=1, window=2), report=str(path), scorer="knorm")
    assert auto.budget.sinks == 3  # the last primary sink is at position 2
    caps = make("auto", Budget(0.25, sinks=1, window=2), report=str(path)).capacities(400, 2)
    assert sum(caps) == 200 and caps[0] < 100 < caps[1]  # layer 0 is dormant (sinks take 80 % of its attention)
    # ranks by knorm; sinks 0-2 and the window stay although their keys have the largest norms
    norms = [9.0, 9.5, 8.5, 5.0, 0.5, 3.0, 0.1, 4.0, 8.0, 7.0]
    view = view_of(torch.randn(1, 2, 8, generator=torch.Generator().manual_seed(3)), norm_keys(norms))
    assert kept(auto, view, 6) == [[0, 1, 2, 6, 8, 9]]


# --- protection --------------------------------------------------------------------------------------------------

def test_protected_tokens_stay_even_with_the_lowest_scores():
    # knorm: the sinks (0, 1) and the window (positions >= 12 of 14 seen) have by far the largest norms
    positions = torch.tensor([0, 1, 3, 4, 6, 7, 9, 12, 13])
    norms = [50.0, 60.0, 2.0, 1.0, 3.0, 0.5, 4.0, 70.0, 80.0]
    view = view_of(torch.randn(1, 2, 8), norm_keys(norms), positions=positions, seen=14)
    knorm = make("knorm", Budget(5, sinks=2, window=2))
    assert kept(knorm, view, 5) == [[0, 1, 7, 12, 13]]
    assert kept(knorm, view, 6) == [[0, 1, 4, 7, 12, 13]]
    # attention scorers: the newest query looks only at token 5, so tokens 0, 8 and 9 get ~nothing from it
    view = view_of(logit_rows(10, 1, {0: 5}), identity_keys(10))
    for name in ("tova", "snapkv", "h2o"):
        options = {"kernel": 1} if name == "snapkv" else {}
        assert kept(make(name, Budget(4, sinks=1, window=2), **options), view, 4) == [[0, 5, 8, 9]], name


SCORED = {"full", "window", "streaming_llm", "h2o", "snapkv", "tova", "tova_layer", "knorm", "random", "pyramid",
          "auto", "fastv+snapkv"}  # evicts with SnapKV's scorer (above); its token skipping: tests/test_prefill_skip.py


def test_every_kv_policy_has_a_hand_checked_case_here():
    registered = {name for name, cls in REGISTRY.items() if any(issubclass(c, KVPolicy) for c in (cls, *cls.stacks))}
    assert registered == SCORED, "a new KV policy needs a hand-built case in this file"


# --- H2O's running scores stay with their tokens through SieveLayer.keep() -----------------------------------

def reference_h2o(acc: list[dict[int, float]], queries: torch.Tensor, all_keys: torch.Tensor,
                  stored: torch.Tensor, seen: int, scaling: float) -> None:
    """Add, per KV head, the attention each stored position receives from `queries` (at seen-q .. seen-1),
    computed naively one query at a time in float64 over the keys looked up by position."""
    q_heads, q_len, _ = queries.shape
    kv_heads = all_keys.shape[0]
    for qh in range(q_heads):
        h = qh // (q_heads // kv_heads)
        positions = stored[h].tolist()
        keys = all_keys[h, positions].double()
        for i in range(q_len):
            me = seen - q_len + i
            visible = [j for j, p in enumerate(positions) if p <= me]
            logits = (keys[visible] @ queries[qh, i].double()) * scaling
            for j, w in zip(visible, torch.softmax(logits, 0).tolist(), strict=True):
                acc[h][positions[j]] = acc[h].get(positions[j], 0.0) + w


def test_h2o_running_scores_follow_their_tokens_through_two_evictions():
    gen = torch.Generator().manual_seed(4)
    kv_heads, q_heads, dim, capacity = 2, 4, 8, 6
    scaling = dim**-0.5
    chunks = [10, 4]
    all_keys = 3 * torch.randn(kv_heads, sum(chunks), dim, generator=gen)
    all_queries = 3 * torch.randn(q_heads, sum(chunks), dim, generator=gen)
    h2o = make("h2o", Budget(capacity, sinks=1, window=2))
    layer = SieveLayer()
    acc: list[dict[int, float]] = [{} for _ in range(kv_heads)]
    start = 0
    for chunk in chunks:
        keys = all_keys[None, :, start : start + chunk]
        layer.update(keys, keys.clone())
        queries = all_queries[:, start : start + chunk]
        start += chunk
        stored = layer.positions[0].clone()
        reference_h2o(acc, queries, all_keys, stored, layer.seen, scaling)
        view = LayerView(layer_idx=0, layer_rank=0, n_layers=1, queries=queries[None], keys=layer.keys,
                         values=layer.values, positions=layer.positions, seen=layer.seen, scaling=scaling,
                         state=layer.state)
        h2o.accumulate(view)
        layer.keep(h2o.select(view, capacity))
        assert layer.positions.shape == layer.state["h2o"].shape == (1, kv_heads, capacity)
        for h in range(kv_heads):
            positions = layer.positions[0, h].tolist()
            # each kept token's score is its own accumulated attention, and its key is its own key
            expected = torch.tensor([acc[h][p] for p in positions], dtype=torch.float32)
            torch.testing.assert_close(layer.state["h2o"][0, h], expected, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(layer.keys[0, h], all_keys[h, positions])
            # and the kept ones are the protected plus the best of the rest by that accumulated score
            guard = {p for p in stored[h].tolist() if p < 1 or p >= layer.seen - 2}
            rest = sorted((p for p in stored[h].tolist() if p not in guard), key=lambda p: -acc[h][p])
            assert positions == sorted(guard | set(rest[: capacity - len(guard)]))
        assert start == layer.seen
    assert layer.positions[0, 0].tolist() != layer.positions[0, 1].tolist()  # heads kept different tokens


def test_capabilities_are_declared_and_agree_with_what_each_policy_does(tmp_path):
    """A KV policy that keeps state from every prompt query says so (`accumulates`), so the session feeds it every
    forward and a dense prefix is refused; the capability follows the code, never a guess from attributes."""
    for name, cls in REGISTRY.items():
        if not issubclass(cls, KVPolicy) or cls.composes:
            continue
        policy = make(name, 0.5)
        assert policy.accumulates() == (cls.accumulate is not KVPolicy.accumulate), name
        assert policy.decode_evict_every() == policy.evict_every, name
    assert make("snapkv", 0.5, observe=48).prompt_window() == 48 and make("tova", 0.5).prompt_window() == 1
    assert make("h2o", 0.5).branch_refusal(64) and make("snapkv", 0.5, observe=80).branch_refusal(64)
    assert make("snapkv", 0.5).branch_refusal(64) is None and make("hisa", 0.5).branch_refusal(64) is None
    assert make("hisa", 0.5, sparse_prefill=True).branch_refusal(64) and make("fastv", 0.5).branch_refusal(64)
    assert make("fastv", 0.5).skips_tokens and not make("snapkv", 0.5).skips_tokens
    assert make("hisa", 0.5).decode_evict_every() == 0
