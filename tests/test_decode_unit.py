"""Tree decoding on a tiny random Llama: draft trees, acceptance, the adjacency matrix, and losslessness of every
drafter against a plain greedy loop, under full attention, KV policies (with decode-time eviction) and dynamic
selectors. The real-model tests are in test_decode.py."""

from __future__ import annotations

import pytest
import torch

from tokensieve.core.budget import Budget
from tokensieve.core.cache import SieveCache
from tokensieve.core.hooks import apply
from tokensieve.decode.adjacency import Adjacency
from tokensieve.decode.drafters import LayerSkip, Lookup, Recycling
from tokensieve.decode.loop import decode_tree
from tokensieve.decode.tree import DraftTree
from tokensieve.decode.verify import Verifier, accept
from tokensieve.errors import TokensieveError
from tokensieve.methods import make


def test_prior_tree_is_closed_breadth_first_and_cut():
    tree = DraftTree.by_prior(nodes=20, depth=4, k=4, decay=0.5)
    assert tree.size == 21 and tree.depth <= 4
    assert list(tree.depths) == sorted(tree.depths)  # breadth-first
    for i in range(1, tree.size):
        assert tree.parents[i] < i
    greedy_path = [i for i in range(tree.size) if all(tree.ranks[a] == 0 for a in tree.ancestors(i)[1:])]
    assert len(greedy_path) == 5  # rank 0 at every level is the likeliest path, to full depth
    cut = tree.cut(2)
    assert cut.depth == 2 and cut.size == sum(1 for d in tree.depths if d <= 2)
    seen = tree.visibility()
    assert seen.diagonal().all() and seen[:, 0].all() and not seen[1, 2]


def test_tree_from_paths_and_bad_trees():
    tree = DraftTree.from_paths([[0], [1], [0, 0], [0, 1], [0, 0, 0]])
    assert tree.size == 6 and tree.depth == 3
    with pytest.raises(TokensieveError, match="prefix"):
        DraftTree.from_paths([[0, 1]])
    with pytest.raises(TokensieveError):
        DraftTree.by_prior(nodes=4, depth=2, k=0)
    with pytest.raises(TokensieveError, match="before it"):
        DraftTree((-1, 2, 0), (0, 0, 0))


def test_accept_follows_the_argmax_path():
    tree = DraftTree.from_paths([[0], [1], [0, 0], [1, 0]])  # nodes: 0 root, 1 [0], 2 [1], 3 [0,0], 4 [1,0]
    tokens = [5, 7, 8, 9, 3]
    # the model says: after root 8 (node 2), after node 2 3 (node 4), after node 4 6 (bonus)
    nodes, new = accept(tree, tokens, [8, 1, 3, 2, 6])
    assert nodes == [0, 2, 4] and new == [8, 3, 6]
    nodes, new = accept(tree, tokens, [1, 0, 0, 0, 0])
    assert nodes == [0] and new == [1]


def test_adjacency_update_seed_draft_and_round_trip(tmp_path):
    adj = Adjacency(16, k=3)
    adj.seed([1, 2, 3, 1, 7])
    assert adj.table[1, 0] == 7 and adj.table[2, 0] == 3  # the latest successor of 1 is 7
    logits = torch.zeros(1, 16)
    logits[0, 9], logits[0, 4], logits[0, 5] = 3.0, 2.0, 1.0
    adj.update(torch.tensor([1]), logits)
    assert adj.table[1].tolist() == [9, 4, 5]
    adj.seed([1, 5])  # the prompt's successor goes first, the model's candidates follow, without duplicates
    assert adj.table[1].tolist() == [5, 9, 4]
    adj.seed([1, 9])
    assert adj.table[1].tolist() == [9, 5, 4]
    tree = DraftTree.from_paths([[0], [1], [0, 0]])
    tokens = adj.draft(1, torch.tensor(tree.parents), torch.tensor(tree.ranks), [slice(1, 3), slice(3, 4)])
    assert tokens.tolist() == [1, 9, 5, int(adj.table[9, 0])]
    path = tmp_path / "adj.pt"
    adj.save(path)
    assert torch.equal(Adjacency.load(path, 16).table, adj.table)
    with pytest.raises(TokensieveError, match="vocabulary"):
        Adjacency.load(path, 32)
    (tmp_path / "bad.pt").write_text("not a matrix")
    with pytest.raises(TokensieveError, match="cannot read"):
        Adjacency.load(tmp_path / "bad.pt", 16)


def test_lookup_drafts_what_followed_the_last_ngram():
    tree, tokens = Lookup(length=3).draft(4, [1, 2, 3, 4, 5, 6, 7, 3], depth=None)
    assert tokens.tolist() == [4, 5, 6, 7] and tree.size == 4  # "3 4" seen before: 5 6 7 followed
    tree, tokens = Lookup(length=3).draft(9, [1, 2], depth=None)
    assert tree.size == 1  # no match: a plain greedy step


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    return tiny_llama


def _prompt(n: int = 60) -> list[int]:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 128, (n,), generator=g).tolist()


def _greedy(net, policy, ids: list[int], n: int) -> list[int]:
    cache = SieveCache(net.config)
    with torch.inference_mode(), apply(net, policy, [len(ids)]) as session:
        session.decode_room = n
        logits = net(input_ids=torch.tensor([ids]), past_key_values=cache, use_cache=True).logits[0, -1]
        out = [int(logits.argmax())]
        while len(out) < n:
            logits = net(input_ids=torch.tensor([[out[-1]]]), past_key_values=cache, use_cache=True).logits[0, -1]
            out.append(int(logits.argmax()))
    return out


def _tree(net, policy, ids: list[int], n: int, make_drafter):
    cache = SieveCache(net.config)
    with torch.inference_mode(), apply(net, policy, [len(ids)]) as session:
        session.decode_room = n + 32
        logits = net(input_ids=torch.tensor([ids]), past_key_values=cache, use_cache=True).logits[0, -1]
        verifier = Verifier(net, cache, session)
        run = decode_tree(verifier, make_drafter(net, verifier), ids, int(logits.argmax()), n,
                          lambda out, token: len(out) >= n)
    return run


POLICIES = [("full", 1.0, {}), ("snapkv", 0.5, {}), ("pyramid", 0.5, {}), ("streaming_llm", 0.5, {"evict_every": 4}),
            ("h2o", 0.5, {"evict_every": 3}), ("tokenselect", 0.4, {}), ("hisa", 0.4, {"block": 8}),
            ("fasa", 0.4, {})]


@pytest.mark.parametrize(("name", "budget", "options"), POLICIES, ids=[p[0] for p in POLICIES])
def test_every_drafter_is_lossless_under_every_kind_of_policy(tiny, name, budget, options):
    ids, n = _prompt(), 40

    def policy():
        return make(name, Budget(budget, sinks=2, window=8), **options)

    reference = _greedy(tiny, policy(), ids, n)
    # an adjacency matrix that knows the answer (teacher-forced on greedy's own output) accepts long paths
    knowing = Adjacency(128, k=4)
    knowing.calibrate(tiny, [ids + reference])
    drafters = {
        "recycling": lambda net, v: Recycling(knowing.copy(), DraftTree.by_prior(nodes=10, depth=4, k=4)),
        "recycling-cold": lambda net, v: Recycling(Adjacency(128, k=4), DraftTree.by_prior(nodes=10, depth=4, k=4)),
        "lookup": lambda net, v: Lookup(length=4),
        "layerskip": lambda net, v: LayerSkip(net, v, exit_layer=1, length=3),
    }
    for label, factory in drafters.items():
        run = _tree(tiny, policy(), ids, n, factory)
        assert run.generated == reference, label
    run = _tree(tiny, policy(), ids, n, drafters["recycling"])
    assert run.steps < n / 1.5  # the informed tree really accepts several tokens per step


def test_decode_eviction_happens_where_greedy_evicts(tiny):
    ids, n = _prompt(), 30
    policy = make("streaming_llm", Budget(0.5, sinks=2, window=8), evict_every=4)
    cache = SieveCache(tiny.config)
    with torch.inference_mode(), apply(tiny, policy, [len(ids)]) as session:
        logits = tiny(input_ids=torch.tensor([ids]), past_key_values=cache, use_cache=True).logits[0, -1]
        verifier = Verifier(tiny, cache, session)
        cap = max(session.capacities(0, cache.layers[0].seen, 1))
        stored = []
        decode_tree(verifier, Lookup(length=6), ids, int(logits.argmax()), n,
                    lambda out, token: stored.append(cache.layers[0].stored) or len(out) >= n)
    assert max(stored) <= cap + 4  # never past the eviction point
    assert session.evictions > 3 * len(cache.layers)  # decode evictions ran


def test_verifier_refuses_what_it_cannot_roll_back(tiny):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=8,
                              layer_types=["sliding_attention", "full_attention"])
    gemma = Gemma3ForCausalLM(config).eval()
    with apply(gemma, make("full")) as session, pytest.raises(TokensieveError, match="sliding"):
        Verifier(gemma, SieveCache(gemma.config), session)
