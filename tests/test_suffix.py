"""Suffix drafting (SuffixDecoding): the trie's counts and matches, best-first growth, the tree size chosen from a
cost curve, and lossless decoding on the real SmolLM2 with a shared trie that learns across requests."""

from __future__ import annotations

import pytest

from tokensieve.decode.suffix import UNSEEN, CostCurve, SuffixCache, SuffixTrie, best_size, grow
from tokensieve.errors import TokensieveError


def test_trie_counts_every_substring_up_to_its_depth():
    trie = SuffixTrie(depth=3)
    trie.insert([1, 2, 1, 2, 3])
    root = trie.root
    assert root.children[1].count == 2 and root.children[2].count == 2 and root.children[3].count == 1
    assert root.children[1].children[2].count == 2  # "1 2" twice
    assert root.children[2].children[1].children[2].count == 1  # "2 1 2" once
    assert 3 not in root.children[1].children[2].children[1].children  # depth 3: no "1 2 1 2"
    assert root.total == 5 and root.children[1].children[2].total == 2  # continuations: "1 2 1", "1 2 3"


def test_match_is_the_longest_suffix_with_a_continuation():
    trie = SuffixTrie(depth=8)
    trie.insert([5, 6, 7, 8, 9, 6, 7, 4])
    node = trie.match([1, 6, 7])  # "6 7" occurred twice, followed by 8 and by 4
    assert node.depth == 2 and set(node.children) == {8, 4}
    assert trie.match([1, 2, 3]) is None  # nothing matched
    assert trie.match([9, 6, 7, 4]) is None  # "4" only ever ended the text: no continuation to draft
    assert trie.match([3, 7]).depth == 1  # only "7" occurred before


def test_grow_is_best_first_and_respects_depth():
    trie = SuffixTrie(depth=8)
    for _ in range(3):
        trie.insert([1, 2, 3, 4])
    trie.insert([1, 2, 5])
    match = trie.match([0, 1])
    tokens, parents, probs = grow(match, nodes=10, depth=2)
    # "1" is always followed by 2 (4 times, plus the pseudo-count of an unseen continuation after a 1-token context)
    assert tokens[0] == 2 and parents[0] == 0 and probs[0] == pytest.approx(4 / (4 + UNSEEN))
    # "1 2" is followed by 3 three times and by 5 once: the pseudo-count halves with the 2-token context
    assert tokens[1:] == [3, 5] and parents[1:] == [1, 1]
    assert probs[1] == pytest.approx(probs[0] * 3 / (4 + UNSEEN / 2))
    assert probs[2] == pytest.approx(probs[0] * 1 / (4 + UNSEEN / 2))
    assert probs == sorted(probs, reverse=True)
    assert grow(match, nodes=10, depth=0) == ([], [], [])


def test_tree_size_follows_the_cost_curve():
    cheap = CostCurve.measured({1: 1.0, 16: 1.2})
    dear = CostCurve.measured({1: 1.0, 2: 2.0, 16: 3.0})
    probs = [0.9, 0.8, 0.5, 0.1, 0.05]
    assert best_size(probs, cheap) == 5  # every node pays for itself when width is nearly free
    assert best_size([0.5], dear) == 0  # 1.5 tokens for 2 steps: greedy is better
    assert 0 < best_size(probs, dear) < 5
    assert dear(9) == pytest.approx(2.5) and dear(32) > 3.0  # linear in between and beyond
    with pytest.raises(TokensieveError):
        CostCurve.measured({2: 1.0})


@pytest.mark.real
def test_suffix_drafting_is_lossless_and_learns_across_requests(smollm2):
    from tokensieve.decode.loop import DecodeOptions, speculate
    from tokensieve.decode.workloads import prompt
    from tokensieve.run import generate

    shared = SuffixCache()
    options = DecodeOptions(suffix=shared, cost=CostCurve.measured({1: 1.0, 16: 1.5}))
    for workload, index, policy, budget in (("json", 0, "full", 1.0), ("json", 1, "snapkv", 0.25),
                                            ("code", 0, "tokenselect", 0.25)):
        p = prompt(workload, index)
        kwargs = dict(max_new_tokens=24, plain=p.plain, answer_prefix=p.answer_prefix, stop=p.stop)
        reference = generate("smollm2-135m", p.context, p.question, policy, budget, **kwargs)
        before = shared.trie.nodes
        result = speculate("smollm2-135m", p.context, p.question, policy, budget, decode="suffix", options=options,
                           **kwargs)
        assert result.token_ids == reference.token_ids, (workload, policy)
        assert shared.trie.nodes > before  # the output joined the shared trie
    assert result.stats.decode == "suffix" and result.stats.steps >= 1


@pytest.mark.real
def test_cli_suffix_decoding_gives_greedys_tokens(smollm2, tmp_path):
    import json

    from typer.testing import CliRunner

    from tokensieve.cli import app

    context = tmp_path / "c.txt"
    context.write_text("def add(a, b):\n    return a + b\n\ndef add_three(a, b, c):\n    return a + b + c\n\n")
    args = ["generate", "-c", str(context), "-q", "def add_four(a, b, c, d):", "--policy", "full", "--budget", "1",
            "--max-new-tokens", "16", "--json"]
    greedy = json.loads(CliRunner().invoke(app, args).output)
    suffix = json.loads(CliRunner().invoke(app, [*args, "--decode", "suffix"]).output)
    assert suffix["token_ids"] == greedy["token_ids"] and suffix["stats"]["decode"] == "suffix"
